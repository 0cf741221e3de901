"""``steward.request_approval``: pause a thread until enough people approve an action.

The request is a LangGraph ``interrupt``; the votes come back as ``Command(resume=...)`` under
each approver's principal. What makes it safe:

- **Records, not memory.** The request (id, expiry, roles, quorum) and every accepted vote
  (who, role, when, comment, the ``args_hash`` they saw) are stored with the thread when they
  happen, so a node that re-runs from its first line finds them again, and the votes can be
  listed across threads (``rt.approvals``).
- **Each resume value is used once, by who sent it.** A value is checked against the principal
  that sent it the first time the node receives it; when the node re-runs, LangGraph replays
  the values in order, and each is matched to the vote recorded at its position. A value that
  was refused leaves nothing behind: the saver drops a batch that ends in ApprovalInvalid
  together with the pending resume (see ``writing.put_writes_op``), so it cannot reach a
  later resume in place of that resume's own value.
- **Bound to the arguments.** Requests are identified by their call site and the hash of their
  arguments: if the node would act with other arguments than were approved, it asks again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, cast

from langgraph.types import interrupt
from pydantic import ValidationError

from steward.checkpointers.wakes import timed_out_op
from steward.context import Flow, NodeContext, call, current, run_async, run_sync
from steward.errors import ApprovalInvalid, ConfigError
from steward.guardrails.answers import Response, parse_answer, refused
from steward.guardrails.decision import Approval
from steward.guardrails.records import (
    APPROVED,
    ESCALATED,
    EXPIRED,
    PENDING,
    REJECTED,
    SUPERSEDED,
    Records,
    Request,
    StandingGrant,
    Vote,
)
from steward.identity import Principal
from steward.storage.ops import Op

__all__ = ["Escalate", "arequest_approval", "hash_args", "request_approval"]

# What an approver may answer: LangChain's HITL decision types ("edit" only where the code that
# acts takes the approved arguments from the result: Decision.args, Approval.args).
_PLAIN = ["approve", "reject"]
_EDITABLE = ["approve", "edit", "reject"]

# A policy's second opinion on arguments an approver edited: raises ApprovalInvalid when the
# voter may not approve them (see ``steward.guard``).
Judge = Callable[[dict[str, Any], Principal], None]


@dataclass(frozen=True)
class Escalate:
    """``on_expire=Escalate(["director"])``: when a request expires, ask these roles instead
    (with a fresh expiry of the same length)."""

    roles: tuple[str, ...]

    def __init__(self, roles: Iterable[str]) -> None:
        object.__setattr__(self, "roles", _roles(roles, "Escalate(roles)"))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def hash_args(args: Mapping[str, Any]) -> str:
    """A stable fingerprint of an action's arguments (canonical JSON, SHA-256)."""
    text = json.dumps(args, sort_keys=True, separators=(",", ":"), default=_json_default,
                      ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _roles(roles: Iterable[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(roles, str):
        roles = [roles]
    try:
        out = tuple(sorted({r for r in roles}))
    except TypeError as exc:
        raise ConfigError(f"{what} must be role names, got {roles!r}.") from exc
    if not out or not all(isinstance(r, str) and r for r in out):
        raise ConfigError(f"{what} must name at least one role (non-empty strings), got "
                          f"{roles!r}.")
    return out


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


def _seconds(expires_in: float | dt.timedelta | None) -> float | None:
    if expires_in is None:
        return None
    if isinstance(expires_in, dt.timedelta):
        expires_in = expires_in.total_seconds()
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) \
            or not expires_in > 0:
        raise ConfigError(f"expires_in must be a positive number of seconds or a timedelta, "
                          f"got {expires_in!r}.")
    return float(expires_in)


@dataclass(frozen=True)
class _Ask:
    action: str
    args: dict[str, Any]
    args_hash: str
    roles: tuple[str, ...]
    reasons: tuple[str, ...]
    expires_in: float | None
    quorum: int
    on_expire: dict[str, Any]
    editable: bool = False


def _allowed(request: Request) -> list[str]:
    configs = request.value.get("review_configs") or [{}]
    return list(configs[0].get("allowed_decisions") or _PLAIN)


def check_vote(request: Request, votes: Iterable[Vote], principal: Principal | None,
               value: Any, position: int, now: float, *, args: Mapping[str, Any] | None = None,
               judge: Judge | None = None) -> Vote:
    """Pure: the vote a resume value casts on ``request``, or ApprovalInvalid. ``args`` are the
    request's arguments as the node has them (the request keeps them redacted); ``judge``
    checks edited arguments against the policy."""
    who = f"request {request.request_id} ({request.action})"
    answer = parse_answer(value, request.action,
                          args if args is not None else request.value.get("args") or {})
    if answer.edited is not None and "edit" not in _allowed(request):
        raise ApprovalInvalid(f"{who} cannot be edited (it allows {_allowed(request)}): approve "
                              "or reject it. The thread still waits.", malformed=True)
    if answer.standing is not None and answer.decision != "approve":
        raise ApprovalInvalid(f"{who}: only an approval can be standing. The thread still "
                              "waits.", malformed=True)
    if request.quorum > 1 and (answer.edited is not None or answer.standing is not None):
        raise ApprovalInvalid(f"{who} needs {request.quorum} approvals: an edit or a standing "
                              "approval would change what the others approve; approve or reject "
                              "it as it is. The thread still waits.", rule="quorum")
    if principal is None:
        raise ApprovalInvalid(f"{who}: resume with the approver's principal in the config "
                              "(rt.config(thread_id, approver)). The thread still waits.",
                              rule="no_principal")
    if request.tenant is not None and principal.tenant != request.tenant:
        raise ApprovalInvalid(f"{who}: {principal.id!r} belongs to tenant {principal.tenant!r}, "
                              "the request to another; an approver must be of the thread's "
                              "tenant. The thread still waits.", rule="tenant")
    if principal.id == request.requested_by:
        raise ApprovalInvalid(f"{who}: {principal.id!r} asked for it and cannot vote on its own "
                              "request (four eyes); another approver must. The thread still "
                              "waits.", rule="four_eyes")
    held = sorted(set(request.required_roles) & principal.roles)
    if not held:
        raise ApprovalInvalid(f"{who}: {principal.id!r} holds none of the required roles "
                              f"{list(request.required_roles)}. The thread still waits.",
                              rule="role")
    if any(v.voter == principal.id for v in votes):
        raise ApprovalInvalid(f"{who}: {principal.id!r} already voted; each approver votes "
                              "once. The thread still waits.", rule="second_vote")
    if request.expired(now):
        raise ApprovalInvalid(f"{who} expired at {_iso(request.expires_at)} and can no longer be "
                              "approved; it is closed as its on_expire says (the node asks "
                              "again when it runs).", rule="expired")
    bound = request.args_hash
    edited = answer.edited
    if edited is not None:
        edited = _unredacted(edited, request.value.get("args") or {}, args or {})
        if judge is not None:
            judge(edited, principal)
        bound = hash_args(edited)
    return Vote(request.request_id, principal.id, position, held[0], answer.decision,
                answer.comment, bound, now, edited,
                answer.standing.to_dict() if answer.standing else None)


def _unredacted(edited: Mapping[str, Any], shown: Mapping[str, Any],
                original: Mapping[str, Any]) -> dict[str, Any]:
    """An edit sends back every argument as the approver saw it: where one still reads as
    redacted (``[REDACTED:email]``), the approver left it alone, so it keeps its real value."""
    return {k: original[k] if k in original and k in shown and v == shown[k]
            and shown[k] != original[k] else v for k, v in edited.items()}


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


_SHOWN = ("type", "id", "action", "args", "args_hash", "reasons", "required_roles",
          "requested_by", "quorum", "expires_at", "thread_id", "escalated_from",
          "action_requests", "review_configs")


def _shown(request: Request, votes: list[Vote]) -> dict[str, Any]:
    """The interrupt value: the request of the contract, with the votes so far. In a fixed
    key order (PostgreSQL's jsonb hands keys back reordered), so that asking again stores the
    same bytes."""
    value = request.value
    return {**{k: _ordered(value[k]) for k in _SHOWN if k in value},
            "votes": [{"voter": v.voter, "role": v.role, "decision": v.decision,
                       "at": _iso(v.at)} for v in votes]}


def _outcome(request: Request, votes: list[Vote]) -> Approval | None:
    mine = [v for v in votes if v.request_id == request.request_id]
    rejects = [v for v in mine if v.decision == "reject"]
    approves = [v for v in mine if v.decision == "approve"]
    if rejects:
        last = rejects[0]
        return Approval(request.request_id, "reject", (last.voter,), last.comment, last.at,
                        request.args_hash)
    if len(approves) >= request.quorum:
        final = approves[-1]  # an edit or a standing grant decides a request of quorum 1
        standing = ({"id": standing_id(request), **final.standing} if final.standing
                    else None)
        return Approval(request.request_id, "approve", tuple(v.voter for v in approves),
                        final.comment, final.at, final.args_hash, final.args,
                        standing=standing)
    return None


def standing_id(request: Request) -> str:
    """The id of the standing approval a request's approval grants (one per request)."""
    return "std_" + request.request_id.removeprefix("apr_")


def _grant(request: Request, vote: Vote, done: Approval | None) -> StandingGrant | None:
    """The standing approval the deciding vote grants, if it asked for one."""
    if done is None or not done.approved or vote.standing is None:
        return None
    return StandingGrant(standing_id(request), request.thread_id, request.tenant,
                         request.action, request.required_roles, request.request_id,
                         vote.voter, int(vote.standing["uses"]), 0, vote.at,
                         vote.at + float(vote.standing["expires_in"]))


def _hitl(action: str, args: Any, reasons: Iterable[str], editable: bool) -> dict[str, Any]:
    """LangChain's HITLRequest keys, which Agent Chat UI and Agent Inbox render as a card."""
    return {"action_requests": [{"name": action, "args": args,
                                 "description": "; ".join(reasons)}],
            "review_configs": [{"action_name": action,
                                "allowed_decisions": _EDITABLE if editable else _PLAIN}]}


def _new_request(ctx: NodeContext, seq: int, ask: _Ask, now: float,
                 requester: str | None) -> Request:
    rid = "apr_" + secrets.token_hex(12)
    expires_at = now + ask.expires_in if ask.expires_in is not None else None
    shown_args = ctx.runtime.redactor.redact(ask.args)
    value = {"type": "approval_request", "id": rid, "action": ask.action,
             "args": shown_args, "args_hash": ask.args_hash,
             "reasons": list(ask.reasons), "required_roles": list(ask.roles),
             "requested_by": requester, "quorum": ask.quorum,
             "expires_at": _iso(expires_at), "thread_id": ctx.thread_id,
             **_hitl(ask.action, shown_args, ask.reasons, ask.editable and ask.quorum == 1)}
    return Request(rid, ctx.thread_id, ctx.task_ns, seq, ctx.person.tenant, ask.action,
                   ask.args_hash, value, ask.roles, requester, ask.quorum, PENDING,
                   ask.on_expire, now, expires_at, None, None)


def successor_of(request: Request, roles: tuple[str, ...], now: float) -> Request:
    """The same request, asked of other roles, with a fresh expiry of the same length."""
    rid = "apr_" + secrets.token_hex(12)
    length = request.expires_at - request.created_at if request.expires_at is not None else None
    expires_at = now + length if length is not None else None
    value = {**request.value, "id": rid, "required_roles": list(roles),
             "expires_at": _iso(expires_at), "escalated_from": request.request_id}
    return replace(request, request_id=rid, value=value, required_roles=roles, status=PENDING,
                   on_expire={"kind": "reject"}, created_at=now, expires_at=expires_at,
                   decided_at=None, successor=None)


def expire_op(records: Records, request: Request, now: float) -> Op[Request | None]:
    """Close an expired request as its on_expire says; returns the escalated successor."""
    rule = request.on_expire or {"kind": "reject"}
    if rule.get("kind") == "escalate":
        successor = successor_of(request, tuple(rule["roles"]), now)
        changed = yield from records.set_status(request.request_id, ESCALATED, decided_at=now,
                                                successor=successor.request_id, expect=PENDING)
        if not changed:
            return None
        yield from records.create(successor)
        yield from timed_out_op(records.threads, request.thread_id, request.request_id,
                                "escalated", successor.required_roles, successor.request_id)
        return successor
    if (yield from records.set_status(request.request_id, EXPIRED, decided_at=None,
                                      expect=PENDING)):
        yield from timed_out_op(records.threads, request.thread_id, request.request_id,
                                "expired")
    return None


def _replayed(vote: Vote, value: Any, shown: Request, ask: _Ask) -> Vote:
    """A vote recorded earlier, with the arguments its (replayed) value edited: the records
    keep only their hash (edited arguments are the thread's data: they stay in its
    checkpoints, under its encryption)."""
    if vote.args_hash == shown.args_hash or vote.decision != "approve":
        return vote
    edited = parse_answer(value, shown.action, ask.args).edited
    if edited is not None:
        edited = _unredacted(edited, shown.value.get("args") or {}, ask.args)
    if edited is None or hash_args(edited) != vote.args_hash:
        raise ApprovalInvalid(f"the answer replayed for request {shown.request_id} does not "
                              "match the vote recorded for it; resume the thread again.",
                              rule="replay")
    return replace(vote, args=edited)


@dataclass(frozen=True)
class _Malformed:
    """A resume LangGraph's ``response_schema`` refused before saving it."""

    error: ValidationError


def _ask(shown: Request, votes: list[Vote]) -> Any:
    """Pause on ``shown``; what the approver answers, checked against the answer schema."""
    try:
        return interrupt(_shown(shown, votes), response_schema=cast(type, Response))
    except ValidationError as exc:
        return _Malformed(exc)


def _approval_flow(ctx: NodeContext, ask: _Ask, requester: str | None = None,
                   judge: Judge | None = None) -> Flow[Approval]:
    records = ctx.runtime.guardrails.records
    seq = ctx.next_site()
    requests, by_position = yield from call(records.site, ctx.thread_id, ctx.task_ns, seq)
    # Whoever first reached this call site asks, also when the node re-runs under an
    # approver's config and asks again (the arguments changed, or the request expired).
    requester = requests[0].requested_by if requests else requester or ctx.person.id
    by_id = {r.request_id: r for r in requests}
    # The request this call site shows: the newest one still open or approved, following
    # escalations; a new one when there is none.
    open_ = [r for r in requests if r.status in (PENDING, APPROVED, EXPIRED, ESCALATED)]
    shown: Request | None = open_[-1] if open_ else None
    while shown is not None and shown.status == ESCALATED and shown.successor in by_id:
        shown = by_id[shown.successor]
    if shown is not None and shown.status == EXPIRED:
        if shown.decided_at is None:  # expired while the thread waited: report it, once
            now = time.time()
            yield from call(records.set_status, shown.request_id, EXPIRED, decided_at=now)
            return Approval(shown.request_id, "expired", (), None, now, shown.args_hash)
        shown = None  # reported before: the node runs again, so it asks again
    created: set[str] = set()  # requests made in this execution: nobody has seen them yet
    if shown is None:
        shown = _new_request(ctx, seq, ask, time.time(), requester)
        yield from call(records.create, shown)
        created.add(shown.request_id)
        ctx.audit("approval_request", shown.value)
    votes = yield from call(records.votes, [shown.request_id])
    while True:
        position = ctx.peek_position()
        recorded = by_position.get(position)
        if recorded is None:
            # No earlier execution consumed a value here: decide from the records.
            done = _outcome(shown, votes)
            if done is not None and shown.args_hash == ask.args_hash \
                    and (done.args_hash == shown.args_hash or done.args is not None):
                return done
            if done is not None or (shown.status == PENDING and shown.args_hash != ask.args_hash
                                    and not votes):
                # Decided, or still unanswered, for other arguments than the node now has.
                if shown.status == PENDING and done is None:
                    yield from call(records.set_status, shown.request_id, SUPERSEDED,
                                    decided_at=time.time())
                shown = _new_request(ctx, seq, ask, time.time(), requester)
                yield from call(records.create, shown)
                created.add(shown.request_id)
                ctx.audit("approval_request", shown.value)
                votes = []
        ctx.next_position()
        before = ctx.resumes_so_far()
        value = _ask(shown, votes)  # raises GraphInterrupt: the thread waits
        if isinstance(value, _Malformed):
            # A new value that the answer schema refused (LangGraph keeps none such). Sent
            # before this request existed, it answered another interrupt: ask. Else say why
            # in Steward's words; nothing of it is saved.
            if shown.request_id in created:
                continue
            refusal = refused(value.error, shown.action)
            ctx.audit("approval_invalid", {"request_id": shown.request_id,
                                           "reason": str(refusal), "rule": refusal.rule})
            raise refusal
        if ctx.resumes_so_far() == before or recorded is not None:
            # A value this position consumed before (replayed as the node re-runs, or the
            # same vote delivered again after a crash): the vote recorded then stands.
            if recorded is not None and recorded.request_id == shown.request_id:
                votes = [_replayed(v, value, shown, ask) if v.voter == recorded.voter else v
                         for v in votes]
            continue
        if shown.request_id in created:
            # A value sent before this request existed (for an interrupt that used to follow,
            # before the arguments changed) is nobody's vote on it: ask.
            continue
        now = time.time()
        if shown.expired(now):
            successor = yield from call(expire_op, records, shown, now)
            if successor is None:
                check_vote(shown, votes, ctx.person, value, position, now)  # raises
                raise AssertionError("an expired request refuses every vote")
            shown, votes = successor, []
        seen = _shown(shown, votes)  # what the approver was shown
        try:
            vote = check_vote(shown, votes, ctx.person, value, position, now, args=ask.args,
                              judge=judge)
        except ApprovalInvalid as exc:
            ctx.audit("approval_invalid", {"request_id": shown.request_id, "reason": str(exc),
                                           "rule": exc.rule})
            raise
        ctx.audit("approval_vote", {**vote.to_dict(), "request_id": shown.request_id,
                                    "saw_hash": hash_args(seen)})
        done = _outcome(shown, [*votes, vote])
        yield from call(records.add_vote, vote, ctx.thread_id, ctx.task_ns,
                        standing=_grant(shown, vote, done))
        by_position[position] = vote
        votes = [*votes, vote]
        if done is not None:
            status = APPROVED if done.decision == "approve" else REJECTED
            yield from call(records.set_status, shown.request_id, status,
                            decided_at=done.decided_at)
            shown = replace(shown, status=status, decided_at=done.decided_at)
            ctx.audit("approval_outcome", done.to_dict())


def _prepare(action: str, args: Mapping[str, Any], required_roles: Iterable[str] | str,
             reason: str | Iterable[str], expires_in: float | dt.timedelta | None, quorum: int,
             on_expire: Literal["reject"] | Escalate, editable: bool = False) -> _Ask:
    if not isinstance(action, str) or not action:
        raise ConfigError(f"the action must be a non-empty string, got {action!r}.")
    if not isinstance(args, Mapping):
        raise ConfigError(f"args must be a dict of the action's arguments, got "
                          f"{type(args).__name__}.")
    if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1:
        raise ConfigError(f"quorum must be a whole number >= 1, got {quorum!r}.")
    roles = _roles(required_roles, "required_roles")
    reasons = (reason,) if isinstance(reason, str) else tuple(str(r) for r in reason)
    seconds, rule = expiry(expires_in, on_expire)
    plain = dict(args)
    if not isinstance(editable, bool):
        raise ConfigError(f"editable is True or False, got {editable!r}.")
    return _Ask(action, plain, hash_args(plain), roles, reasons, seconds, quorum, rule, editable)


def expiry(expires_in: float | dt.timedelta | None,
           on_expire: Literal["reject"] | Escalate) -> tuple[float | None, dict[str, Any]]:
    """How long a request waits (seconds) and what it becomes then, checked."""
    if isinstance(on_expire, Escalate):
        rule: dict[str, Any] = {"kind": "escalate", "roles": list(on_expire.roles)}
    elif on_expire == "reject":
        rule = {"kind": "reject"}
    else:
        raise ConfigError(f"on_expire is 'reject' or steward.Escalate([...roles]), got "
                          f"{on_expire!r}.")
    return _seconds(expires_in), rule


def request_approval(action: str, args: Mapping[str, Any], *,
                     required_roles: Iterable[str] | str, reason: str | Iterable[str],
                     expires_in: float | dt.timedelta | None = None, quorum: int = 1,
                     on_expire: Literal["reject"] | Escalate = "reject",
                     editable: bool = False) -> Approval:
    """Inside a node: wait until ``quorum`` people holding one of ``required_roles`` approve
    ``action`` with these ``args`` (or one rejects it), and return how it ended.

    The thread pauses with an interrupt whose value is the approval request (with LangChain's
    ``action_requests`` and ``review_configs``, which Agent Chat UI renders); resume it with
    ``Command(resume={"decision": "approve" | "reject", "comment": "..."})`` (or LangChain's
    ``{"decisions": [...]}``, or Agent Inbox's list) under the approver's principal. A resume
    that breaks a rule raises ApprovalInvalid and changes nothing. ``editable=True`` lets an
    approver edit the arguments instead (quorum 1 only): act with ``Approval.args`` then.
    ``expires_in`` (seconds or a timedelta) bounds the wait; ``on_expire`` says what an
    expired request becomes: "reject" (the node gets ``Approval(decision="expired")``) or
    ``Escalate(roles)`` (the same request, to other roles)."""
    ctx = current("request_approval")
    ask = _prepare(action, args, required_roles, reason, expires_in, quorum, on_expire, editable)
    return run_sync(ctx, _approval_flow(ctx, ask))


async def arequest_approval(action: str, args: Mapping[str, Any], *,
                            required_roles: Iterable[str] | str, reason: str | Iterable[str],
                            expires_in: float | dt.timedelta | None = None, quorum: int = 1,
                            on_expire: Literal["reject"] | Escalate = "reject",
                            editable: bool = False) -> Approval:
    """The async twin of :func:`request_approval`, for ``async def`` nodes."""
    ctx = current("arequest_approval")
    ask = _prepare(action, args, required_roles, reason, expires_in, quorum, on_expire, editable)
    return await run_async(ctx, _approval_flow(ctx, ask))
