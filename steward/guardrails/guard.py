"""``steward.guard(action, args)``: ask the runtime's policies before a risky step.

allow -> returns the Decision; deny -> raises PolicyDenied (the task stops, the thread keeps its
last checkpoint); approval -> ``request_approval`` for the roles and quorum the policy names,
then allow or PolicyDenied as the approvers decided. Every decision (with the decisions of
policy sets in shadow mode) is recorded with the thread, and authorized calls form the history
later policies see (``context.history``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from steward.context import Flow, NodeContext, call, current, run_async, run_sync
from steward.errors import ApprovalInvalid, ConfigError, PolicyDenied
from steward.guardrails.decision import Approval, Decision, combine
from steward.guardrails.policy import (
    ActionHistory,
    Policy,
    PolicyRequest,
    ThreadFacts,
    _number,
)
from steward.guardrails.records import Records, StandingGrant
from steward.guardrails.request import (
    Escalate,
    Judge,
    _approval_flow,
    _prepare,
    expiry,
    hash_args,
)
from steward.identity import Principal
from steward.storage.ops import Op

__all__ = ["Guardrails", "aguard", "guard"]


@dataclass
class Guardrails:
    """What a runtime decides with: its policy sets and where decisions are recorded."""

    policies: tuple[Policy, ...]
    records: Records
    approval_expires_in: float | None = None

    @classmethod
    def build(cls, records: Records, policy: Policy | Sequence[Policy] | None,
              approval_expires_in: float | None = None) -> Guardrails:
        return cls(policies_of(policy), records, approval_expires_in)

    def decide(self, request: PolicyRequest, *, strict: bool = True) -> Decision:
        """Pure: the enforced decision, with the shadow decisions attached (``strict``: see
        Policy.evaluate)."""
        enforced = combine(p.evaluate(request, strict=strict) for p in self.policies
                           if p.enforce)
        shadow = tuple(p.evaluate(request, strict=strict) for p in self.policies
                       if not p.enforce)
        return replace(enforced, shadow=shadow) if shadow else enforced


def policies_of(policy: Policy | Sequence[Policy] | None) -> tuple[Policy, ...]:
    if policy is None:
        return ()
    if isinstance(policy, Policy):
        return (policy,)
    if isinstance(policy, Sequence) and all(isinstance(p, Policy) for p in policy):
        return tuple(policy)
    raise ConfigError("policy= takes a steward.Policy or a list of them (Policy.from_cedar(text) "
                      f"or Policy.from_file(path)), got {type(policy).__name__}.")


def _numbers(args: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in args.items():
        number = _number(value)
        if number is not None:
            out[str(name)] = str(number)
    return out


def _denied(action: str, decision: Decision) -> PolicyDenied:
    ids = f" (policies: {', '.join(decision.policy_ids)})" if decision.policy_ids else ""
    return PolicyDenied(f"{action!r} is not allowed: {'; '.join(decision.reasons)}{ids}. The "
                        "thread keeps its last checkpoint; change the request or the policy.",
                        decision=decision)


# What is wrong with arguments an approver edited, for the code that will act with them (a
# tool's schema, say), or None when they fit.
EditCheck = Callable[[dict[str, Any]], "str | None"]


def edit_judge(guardrails: Guardrails, action: str, facts: ThreadFacts,
               resource: tuple[str, str] | None, history: Mapping[str, ActionHistory],
               fits: EditCheck | None = None) -> Judge:
    """The policy's second opinion on arguments an approver edited: the approver vouches for
    them, so they are judged as the approver's request on the same thread; a deny refuses the
    edit, and so does an approval the voter could not give alone (other roles, a quorum).
    ``fits`` first checks them against what the code acting with them takes."""

    def judge(edited: dict[str, Any], voter: Principal) -> None:
        why = f"the edited arguments of {action!r}"
        problem = fits(edited) if fits is not None else None
        if problem:
            raise ApprovalInvalid(f"{why} do not fit: {problem}. Edit them to what {action!r} "
                                  "takes, approve the request as it is, or reject it. The "
                                  "thread still waits.", malformed=True)
        again = guardrails.decide(PolicyRequest(voter, action, edited, facts, resource, history))
        if again.denied:
            ids = f" (policies: {', '.join(again.policy_ids)})" if again.policy_ids else ""
            raise ApprovalInvalid(f"{why} are not allowed: {'; '.join(again.reasons)}{ids}. "
                                  "Approve the request as it is, reject it, or edit within the "
                                  "policy. The thread still waits.", rule="edit")
        if again.needs_approval and (again.quorum > 1 or not set(again.roles) & voter.roles):
            raise ApprovalInvalid(f"{why} need the approval of {again.quorum} of "
                                  f"{list(again.roles)}, which {voter.id!r} cannot give alone. "
                                  "Approve the request as it is, reject it, or edit within what "
                                  "you may approve. The thread still waits.", rule="edit")

    return judge


def _guard_flow(ctx: NodeContext, action: str, args: dict[str, Any],
                resource: tuple[str, str] | None, expires_in: float | None,
                on_expire: Literal["reject"] | Escalate,
                editable: tuple[bool, EditCheck | None]) -> Flow[Decision]:
    guardrails = ctx.runtime.guardrails
    records = guardrails.records
    seq = ctx.next_site()
    args_hash = hash_args(args)
    numbers = _numbers(args)
    prior = yield from call(records.action_at, ctx.thread_id, ctx.task_ns, seq)
    history: Mapping[str, ActionHistory] | None = None
    fresh = False  # decided now, not when an earlier execution of the node asked
    if prior is not None and prior.effect != "deny" and (prior.action, prior.args_hash) == (
            action, args_hash):
        # The node re-runs (after an approval, say, now under the approver's config): the
        # call was decided when first asked, for whoever asked then.
        decision = Decision.from_dict(prior.decision)
        requester = prior.principal_id
        used = prior.decision.get("standing_id")
        if prior.effect == "approved" and used:  # a standing approval let it pass
            return replace(decision, effect="allow", args=args,
                           approval=_standing_approval(prior.decision, used, args_hash))
    else:
        history = yield from call(records.history, ctx.thread_id, ctx.task_ns, seq,
                                  ctx.checkpoint_id)
        decision = guardrails.decide(PolicyRequest(
            ctx.actor, action, args, (yield from _facts(ctx)), resource, history))
        requester = ctx.person.id  # a team's agent asks on its principal's behalf
        fresh = True
        yield from call(records.record_action, ctx.thread_id, ctx.task_ns, seq,
                        ctx.checkpoint_id, action, args_hash, decision.effect, numbers,
                        decision.to_dict(), requester)
    ctx.audit("guard", {"action": action, "args": args, "args_hash": args_hash,
                        "decision": decision.to_dict(), "decided_for": requester})
    if decision.allowed:
        return replace(decision, args=args)
    if decision.denied:
        raise _denied(action, decision)
    if fresh:
        standing = yield from _use_standing(ctx, decision, action, args_hash, numbers, seq,
                                            requester)
        if standing is not None:
            return replace(standing, args=args)
    if history is None:
        history = yield from call(records.history, ctx.thread_id, ctx.task_ns, seq,
                                  ctx.checkpoint_id)
    judge = edit_judge(guardrails, action, (yield from _facts(ctx)), resource, history,
                       editable[1])
    ask = _prepare(action, args, decision.roles, decision.reasons,
                   expires_in if expires_in is not None else guardrails.approval_expires_in,
                   decision.quorum, on_expire, editable[0])
    approval = yield from _approval_flow(ctx, ask, requester, judge)
    if not approval.approved:
        verb = {"reject": "rejected", "expired": "not approved in time"}[approval.decision]
        by = f" by {', '.join(approval.approvers)}" if approval.approvers else ""
        note = f" ({approval.comment})" if approval.comment else ""
        raise _denied(action, replace(decision, effect="deny", reasons=(
            *decision.reasons, f"the approval request {approval.request_id} was {verb}{by}{note}"),
            approval=approval))
    acted = approval.args if approval.args is not None else args
    allowed = replace(decision, effect="allow", approval=approval, args=acted)
    if prior is None or prior.effect != "approved":
        # What the thread did, for later policies' history: the arguments approved.
        yield from call(records.record_action, ctx.thread_id, ctx.task_ns, seq,
                        ctx.checkpoint_id, action, args_hash, "approved", _numbers(acted),
                        {**replace(decision, effect="approval").to_dict(),
                         "approved_args_hash": approval.args_hash}, requester)
    return allowed


def _facts(ctx: NodeContext) -> Flow[ThreadFacts]:
    tenant, owner = yield from call(ctx.runtime.guardrails.records.thread_identity,
                                    ctx.thread_id)
    return ThreadFacts(ctx.thread_id, tenant or ctx.person.tenant, owner or ctx.person.id,
                       ctx.metadata)


def _standing_approval(recorded: Mapping[str, Any], standing: str, args_hash: str) -> Approval:
    return Approval(str(recorded.get("standing_request", "")), "approve",
                    (str(recorded.get("standing_granted_by", "")),), None,
                    float(recorded.get("standing_at", 0.0)), args_hash, standing_id=standing)


def _use_standing(ctx: NodeContext, decision: Decision, action: str, args_hash: str,
                  numbers: dict[str, str], seq: int,
                  requester: str | None) -> Flow[Decision | None]:
    """Let the call pass on a standing approval of the thread, if one fits: the same action,
    sent to the same roles, not granted by the requester, uses and time left. The use is
    counted and recorded with the call in one transaction, and audited."""
    if decision.quorum != 1:
        return None
    records = ctx.runtime.guardrails.records
    now = time.time()
    grant = yield from call(_standing_op, records, ctx.thread_id, ctx.task_ns, seq,
                            ctx.checkpoint_id, action, args_hash, numbers, decision,
                            requester, now)
    if grant is None:
        return None
    ctx.audit("approval_standing_use", {"standing_id": grant.standing_id, "action": action,
                                        "args_hash": args_hash, "granted_by": grant.granted_by,
                                        "request_id": grant.request_id,
                                        "uses_left": grant.uses - grant.used})
    approval = Approval(grant.request_id, "approve", (grant.granted_by,), None, now, args_hash,
                        standing_id=grant.standing_id)
    return replace(decision, effect="allow", approval=approval)


def _standing_op(records: Records, thread_id: str, task_ns: str, seq: int, checkpoint_id: str,
                 action: str, args_hash: str, numbers: dict[str, str], decision: Decision,
                 requester: str | None, now: float) -> Op[StandingGrant | None]:
    grant = yield from records.use_standing(thread_id, action, decision.roles, requester, now)
    if grant is not None:
        yield from records.record_action(
            thread_id, task_ns, seq, checkpoint_id, action, args_hash, "approved", numbers,
            {**replace(decision, effect="approval").to_dict(), "standing_id": grant.standing_id,
             "standing_request": grant.request_id, "standing_granted_by": grant.granted_by,
             "standing_at": now}, requester)
    return grant


def _checked(action: str, args: Mapping[str, Any] | None,
             resource: tuple[str, str] | None) -> tuple[dict[str, Any],
                                                        tuple[str, str] | None]:
    if not isinstance(action, str) or not action:
        raise ConfigError(f"steward.guard needs the action's name, got {action!r}.")
    if args is not None and not isinstance(args, Mapping):
        raise ConfigError(f"steward.guard takes the action's arguments as a dict, got "
                          f"{type(args).__name__}.")
    if resource is not None and not (isinstance(resource, tuple) and len(resource) == 2
                                     and all(isinstance(x, str) and x for x in resource)):
        raise ConfigError(f"resource is a (type, id) pair of strings such as ('Order', "
                          f"'98765'), got {resource!r}.")
    return dict(args or {}), resource


def guard(action: str, args: Mapping[str, Any] | None = None, *,
          resource: tuple[str, str] | None = None,
          expires_in: float | dt.timedelta | None = None,
          on_expire: Literal["reject"] | Escalate = "reject",
          editable: bool | EditCheck = False) -> Decision:
    """Inside a node, before ``action``: check the runtime's policies for the acting principal
    (see the module docstring). ``resource`` names what the action touches, e.g.
    ``("Order", "98765")``; ``expires_in`` and ``on_expire`` apply if approval is needed.

    Act with the returned ``Decision.args``: the arguments asked about, or, with
    ``editable=True``, the ones an approver edited (judged by the policy again) and approved.
    Leave ``editable`` off where the code acts with its own arguments; pass a function instead
    of True to refuse edits the acting code cannot take (it returns what is wrong, or None),
    before they count as a vote."""
    plain, named = _checked(action, args, resource)
    ctx = current("guard")
    seconds, _ = expiry(expires_in, on_expire)
    return run_sync(ctx, _guard_flow(ctx, action, plain, named, seconds, on_expire,
                                     _editable(editable)))


async def aguard(action: str, args: Mapping[str, Any] | None = None, *,
                 resource: tuple[str, str] | None = None,
                 expires_in: float | dt.timedelta | None = None,
                 on_expire: Literal["reject"] | Escalate = "reject",
                 editable: bool | EditCheck = False) -> Decision:
    """The async twin of :func:`guard`, for ``async def`` nodes."""
    plain, named = _checked(action, args, resource)
    ctx = current("aguard")
    seconds, _ = expiry(expires_in, on_expire)
    return await run_async(ctx, _guard_flow(ctx, action, plain, named, seconds, on_expire,
                                            _editable(editable)))


def _editable(editable: bool | EditCheck) -> tuple[bool, EditCheck | None]:
    if isinstance(editable, bool):
        return editable, None
    if callable(editable):
        return True, editable
    raise ConfigError(f"editable is True, False, or a function saying what is wrong with "
                      f"edited arguments (None when they fit), got {editable!r}.")

