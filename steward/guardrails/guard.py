"""``steward.guard(action, args)``: ask the runtime's policies before a risky step.

allow -> returns the Decision; deny -> raises PolicyDenied (the task stops, the thread keeps its
last checkpoint); approval -> ``request_approval`` for the roles and quorum the policy names,
then allow or PolicyDenied as the approvers decided. Every decision (with the decisions of
policy sets in shadow mode) is recorded with the thread, and authorized calls form the history
later policies see (``context.history``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from steward.context import Flow, NodeContext, call, current, run_async, run_sync
from steward.errors import ConfigError, PolicyDenied
from steward.guardrails.decision import Decision, combine
from steward.guardrails.policy import Policy, PolicyRequest, ThreadFacts, _number
from steward.guardrails.records import Records
from steward.guardrails.request import (
    Escalate,
    _approval_flow,
    _prepare,
    expiry,
    hash_args,
)

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


def _guard_flow(ctx: NodeContext, action: str, args: dict[str, Any],
                resource: tuple[str, str] | None, expires_in: float | None,
                on_expire: Literal["reject"] | Escalate) -> Flow[Decision]:
    guardrails = ctx.runtime.guardrails
    records = guardrails.records
    seq = ctx.next_site()
    args_hash = hash_args(args)
    numbers = _numbers(args)
    prior = yield from call(records.action_at, ctx.thread_id, ctx.task_ns, seq)
    if prior is not None and prior.effect != "deny" and (prior.action, prior.args_hash) == (
            action, args_hash):
        # The node re-runs (after an approval, say, now under the approver's config): the
        # call was decided when first asked, for whoever asked then.
        decision = Decision.from_dict(prior.decision)
        requester = prior.principal_id
    else:
        tenant, owner = yield from call(records.thread_identity, ctx.thread_id)
        history = yield from call(records.history, ctx.thread_id, ctx.task_ns, seq,
                                  ctx.checkpoint_id)
        request = PolicyRequest(
            ctx.actor, action, args,
            ThreadFacts(ctx.thread_id, tenant or ctx.person.tenant, owner or ctx.person.id,
                        ctx.metadata),
            resource, history)
        decision = guardrails.decide(request)
        requester = ctx.person.id  # a team's agent asks on its principal's behalf
        yield from call(records.record_action, ctx.thread_id, ctx.task_ns, seq,
                        ctx.checkpoint_id, action, args_hash, decision.effect, numbers,
                        decision.to_dict(), requester)
    ctx.audit("guard", {"action": action, "args": args, "args_hash": args_hash,
                        "decision": decision.to_dict(), "decided_for": requester})
    if decision.allowed:
        return decision
    if decision.denied:
        raise _denied(action, decision)
    ask = _prepare(action, args, decision.roles, decision.reasons,
                   expires_in if expires_in is not None else guardrails.approval_expires_in,
                   decision.quorum, on_expire)
    approval = yield from _approval_flow(ctx, ask, requester)
    if not approval.approved:
        verb = {"reject": "rejected", "expired": "not approved in time"}[approval.decision]
        by = f" by {', '.join(approval.approvers)}" if approval.approvers else ""
        note = f" ({approval.comment})" if approval.comment else ""
        raise _denied(action, replace(decision, effect="deny", reasons=(
            *decision.reasons, f"the approval request {approval.request_id} was {verb}{by}{note}"),
            approval=approval))
    allowed = replace(decision, effect="allow", approval=approval)
    if prior is None or prior.effect != "approved":
        yield from call(records.record_action, ctx.thread_id, ctx.task_ns, seq,
                        ctx.checkpoint_id, action, args_hash, "approved", numbers,
                        replace(decision, effect="approval").to_dict(), requester)
    return allowed


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
          on_expire: Literal["reject"] | Escalate = "reject") -> Decision:
    """Inside a node, before ``action``: check the runtime's policies for the acting principal
    (see the module docstring). ``resource`` names what the action touches, e.g.
    ``("Order", "98765")``; ``expires_in`` and ``on_expire`` apply if approval is needed."""
    plain, named = _checked(action, args, resource)
    ctx = current("guard")
    seconds, _ = expiry(expires_in, on_expire)
    return run_sync(ctx, _guard_flow(ctx, action, plain, named, seconds, on_expire))


async def aguard(action: str, args: Mapping[str, Any] | None = None, *,
                 resource: tuple[str, str] | None = None,
                 expires_in: float | dt.timedelta | None = None,
                 on_expire: Literal["reject"] | Escalate = "reject") -> Decision:
    """The async twin of :func:`guard`, for ``async def`` nodes."""
    plain, named = _checked(action, args, resource)
    ctx = current("aguard")
    seconds, _ = expiry(expires_in, on_expire)
    return await run_async(ctx, _guard_flow(ctx, action, plain, named, seconds, on_expire))

