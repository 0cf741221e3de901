"""What a policy says about one request, as plain data.

A decision is computed by a pure function (``Policy.evaluate``) and only then acted on by
``steward.guard``, so it can be logged, compared in shadow mode and tested without a graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Approval", "Decision"]

Effect = Literal["allow", "deny", "approval"]


@dataclass(frozen=True)
class Approval:
    """How an approval request ended: ``decision`` is "approve", "reject" or "expired".

    ``args``: the arguments an approver edited and approved (None: approved as asked), bound
    by ``args_hash``; ``standing``: the standing grant the approval made, or ``standing_id``:
    the standing approval this call used instead of asking."""

    request_id: str
    decision: Literal["approve", "reject", "expired"]
    approvers: tuple[str, ...]
    comment: str | None
    decided_at: float
    args_hash: str
    args: dict[str, Any] | None = field(default=None, compare=False)
    standing: dict[str, Any] | None = None
    standing_id: str | None = None

    @property
    def approved(self) -> bool:
        return self.decision == "approve"

    @property
    def edited(self) -> bool:
        return self.args is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": self.request_id, "decision": self.decision,
               "approvers": list(self.approvers), "comment": self.comment,
               "decided_at": self.decided_at, "args_hash": self.args_hash}
        if self.args is not None:
            out["edited"] = True
        if self.standing is not None:
            out["standing"] = self.standing
        if self.standing_id is not None:
            out["standing_id"] = self.standing_id
        return out


@dataclass(frozen=True)
class Decision:
    """Allow, deny, or allow once people holding ``roles`` approve (``quorum`` of them).

    ``policy_ids`` names the policies that determined the outcome (their ``@id``, else Cedar's
    positional id); ``enforced`` is False for a decision of a policy set in shadow mode;
    ``shadow`` carries those decisions next to the enforced one, for comparison. ``args``
    (from ``steward.guard``) are the arguments to act with: the ones asked about, or those an
    approver edited and approved; not recorded (they are the thread's data).
    """

    effect: Effect
    reasons: tuple[str, ...] = ()
    policy_ids: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    quorum: int = 1
    enforced: bool = True
    shadow: tuple[Decision, ...] = field(default=(), compare=False)
    approval: Approval | None = field(default=None, compare=False)
    args: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def allow(cls, *, policy_ids: Iterable[str] = (), reasons: Iterable[str] = ()) -> Decision:
        return cls("allow", tuple(reasons), tuple(policy_ids))

    @classmethod
    def deny(cls, reasons: Iterable[str], *, policy_ids: Iterable[str] = ()) -> Decision:
        return cls("deny", tuple(reasons), tuple(policy_ids))

    @classmethod
    def require_approval(cls, roles: Iterable[str], reasons: Iterable[str], quorum: int = 1, *,
                         policy_ids: Iterable[str] = ()) -> Decision:
        return cls("approval", tuple(reasons), tuple(policy_ids), tuple(sorted(set(roles))),
                   quorum)

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"

    @property
    def denied(self) -> bool:
        return self.effect == "deny"

    @property
    def needs_approval(self) -> bool:
        return self.effect == "approval"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """The decision :meth:`to_dict` wrote (without its approval, which has its records)."""
        return cls(data["effect"], tuple(data.get("reasons", ())),
                   tuple(data.get("policy_ids", ())), tuple(data.get("roles", ())),
                   int(data.get("quorum", 1)), bool(data.get("enforced", True)),
                   tuple(cls.from_dict(d) for d in data.get("shadow", ())))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"effect": self.effect, "reasons": list(self.reasons),
                               "policy_ids": list(self.policy_ids), "enforced": self.enforced}
        if self.needs_approval:
            out |= {"roles": list(self.roles), "quorum": self.quorum}
        if self.shadow:
            out["shadow"] = [d.to_dict() for d in self.shadow]
        if self.approval is not None:
            out["approval"] = self.approval.to_dict()
        return out


def combine(decisions: Iterable[Decision]) -> Decision:
    """One decision from several enforced policy sets: any deny wins, then any approval (the
    union of the roles, the largest quorum), else allow."""
    items = list(decisions)
    if not items:
        return Decision.allow(reasons=["no policy is configured"])
    denies = [d for d in items if d.denied]
    if denies:
        return Decision.deny([r for d in denies for r in d.reasons],
                             policy_ids=[p for d in denies for p in d.policy_ids])
    asks = [d for d in items if d.needs_approval]
    if asks:
        return Decision.require_approval(
            [r for d in asks for r in d.roles], [r for d in asks for r in d.reasons],
            max(d.quorum for d in asks), policy_ids=[p for d in asks for p in d.policy_ids])
    return Decision.allow(policy_ids=[p for d in items for p in d.policy_ids],
                          reasons=[r for d in items for r in d.reasons])
