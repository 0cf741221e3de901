"""``rt.approvals``: the approval requests and votes kept with threads, from outside a graph.

What a manager may approve now across the tenant's threads (``pending``, indexed by tenant and
status), what happened on one thread (``history``, under the thread access rule), and closing
requests that expired (``expire``, also run by ``rt.sweep()``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from steward.errors import ApprovalInvalid, ConfigError, ThreadAccessDenied
from steward.guardrails.guard import Guardrails, edit_judge
from steward.guardrails.policy import ThreadFacts
from steward.guardrails.records import Records, Request, StandingGrant, Vote
from steward.guardrails.request import Judge, check_vote, expire_op
from steward.identity import Access, Principal
from steward.storage.codec import load_json
from steward.storage.ops import Op
from steward.storage.values import limit_of, str_id

if TYPE_CHECKING:
    from steward.audit.log import AuditLog
    from steward.storage.drivers import Driver

__all__ = ["Approvals", "timer"]


def timer(tenant: str | None) -> Principal | None:
    """Who the audit names when an approval's time ran out: Steward's timer, a service of the
    request's tenant (nobody acted; the clock did)."""
    return Principal(id="steward-timer", tenant=tenant, kind="service") if tenant else None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


def view(request: Request, votes: list[Vote]) -> dict[str, Any]:
    """A request with its votes, as JSON-ready data (arguments as redacted when asked)."""
    return {
        "id": request.request_id, "thread_id": request.thread_id, "action": request.action,
        "args": request.value.get("args"), "args_hash": request.args_hash,
        "reasons": request.value.get("reasons", []),
        "required_roles": list(request.required_roles), "requested_by": request.requested_by,
        "quorum": request.quorum, "status": request.status,
        "created_at": _iso(request.created_at), "expires_at": _iso(request.expires_at),
        "decided_at": _iso(request.decided_at), "escalated_to": request.successor,
        "votes": [{**v.to_dict(), "at": _iso(v.at)} for v in votes],
    }


def _principal(principal: Principal | Any) -> Principal:
    return Principal.parse(principal)


def _standing_view(grant: StandingGrant) -> dict[str, Any]:
    return {**grant.to_dict(), "created_at": _iso(grant.created_at),
            "expires_at": _iso(grant.expires_at), "revoked_at": _iso(grant.revoked_at),
            "uses_left": max(grant.uses - grant.used, 0)}


class Approvals:
    def __init__(self, records: Records, driver: Driver, audit: AuditLog,
                 guardrails: Guardrails | None = None) -> None:
        self.records = records
        self.driver = driver
        self.audit = audit
        self.guardrails = guardrails

    def _judge_op(self, tid: str, request: Request, row: Any) -> Op[Judge | None]:
        """The policy's check of edited arguments, as the node will make it (without the
        resource the node names, which the request does not keep)."""
        if self.guardrails is None or row is None:
            return None
        history = yield from self.records.history(tid, request.task_ns, request.seq,
                                                  row.waiting_at or "")
        facts = ThreadFacts(tid, row.tenant, row.owner, {})
        return edit_judge(self.guardrails, request.action, facts, None, history)

    def _check_resume_op(self, tid: str, who: Principal,
                         resume: Any) -> Op[ApprovalInvalid | None]:
        """The vote a resume would cast, checked as the node will check it. A refusal is
        audited in the thread's chain and returned (so that the event commits)."""
        row = yield from self.records.threads.authorize_op(tid, who, Access.WRITE,
                                                           vote="resume")
        waiting: list[dict[str, Any]] = (load_json(row.waiting_on) or []) if row else []
        ids = {w.get("id") for w in waiting} - {None}
        value = resume
        if isinstance(resume, Mapping) and resume and set(resume) <= ids:
            if len(resume) != 1:
                return None  # several interrupts answered at once: the nodes decide
            [value] = resume.values()
        elif len(waiting) != 1:
            return None
        now = time.time()
        requests = [r for r in (yield from self.records.open_on(tid)) if not r.expired(now)]
        if len(requests) != 1:
            return None  # expired (the node closes or escalates it) or not an approval
        [request] = requests
        votes = yield from self.records.votes([request.request_id])
        judge = yield from self._judge_op(tid, request, row)
        try:
            check_vote(request, votes, who, value, 0, now, judge=judge)
        except ApprovalInvalid as exc:
            self.audit.record(tid, "approval_invalid", {"request_id": request.request_id,
                                                        "reason": str(exc), "rule": exc.rule},
                              principal=who)
            yield from self.audit.locked_flush_op(tid)
            return exc
        return None

    def check_resume(self, thread_id: str, principal: Principal | dict[str, Any],
                     resume: Any) -> None:
        """Before resuming a thread with ``Command(resume=resume)`` as ``principal``: raise
        ApprovalInvalid now if the node would refuse the vote (four eyes, role, tenant, a
        second vote, a malformed payload; audited as the node audits it), ThreadAccessDenied
        if the principal may not write the thread, ThreadBusy if a run holds it. A host that
        turns a run's exception into a failed thread (the LangGraph server) calls this first,
        so that a refused vote leaves the thread waiting on the same request. Returns quietly
        when the resume is no vote on one open request: the node decides then."""
        refused = self.driver.run(self._check_resume_op(
            str_id(thread_id, "thread_id"), _principal(principal), resume), write=True)
        if refused is not None:
            raise refused

    async def acheck_resume(self, thread_id: str, principal: Principal | dict[str, Any],
                            resume: Any) -> None:
        refused = await self.driver.arun(self._check_resume_op(
            str_id(thread_id, "thread_id"), _principal(principal), resume), write=True)
        if refused is not None:
            raise refused

    def _expire_op(self, now: float) -> Op[list[str]]:
        closed = []
        for request in (yield from self.records.due(now)):
            successor = yield from expire_op(self.records, request, now)
            closed.append(request.request_id)
            # The thread's chain says when the timer fired, and what it did (the node, when it
            # runs again, records what the run makes of it).
            kind = "approval_escalated" if successor is not None else "approval_expired"
            payload: dict[str, Any] = {"request_id": request.request_id,
                                       "action": request.action, "expires_at": request.expires_at}
            if successor is not None:
                payload |= {"successor": successor.request_id,
                            "required_roles": list(successor.required_roles)}
            self.audit.record(request.thread_id, kind, payload, principal=timer(request.tenant),
                              redact=False)
            yield from self.audit.locked_flush_op(request.thread_id)
        return closed

    def pending(self, principal: Principal | dict[str, Any], *,
                limit: int = 100) -> list[dict[str, Any]]:
        """Open requests of the principal's tenant that it may vote on now, oldest first:
        it holds a required role, did not ask, has not voted, and the request has not expired."""
        who = _principal(principal)
        rows = self.driver.run(self.records.pending(who, limit_of(limit)), write=False)
        return [view(r, v) for r, v in rows]

    async def apending(self, principal: Principal | dict[str, Any], *,
                       limit: int = 100) -> list[dict[str, Any]]:
        who = _principal(principal)
        rows = await self.driver.arun(self.records.pending(who, limit_of(limit)), write=False)
        return [view(r, v) for r, v in rows]

    def find(self, prefix: str, principal: Principal | dict[str, Any], *,
             limit: int = 20) -> list[dict[str, Any]]:
        """Requests of the principal's tenant whose id is or starts with ``prefix``, in any
        status, open ones first: how a person names a request by the start of its id, and
        learns why it is not theirs to vote on (``pending`` shows only what they may)."""
        who = _principal(principal)
        rows = self.driver.run(self.records.matching(
            who.tenant, str_id(prefix, "request id"), limit_of(limit)), write=False)
        return [view(r, v) for r, v in rows]

    async def afind(self, prefix: str, principal: Principal | dict[str, Any], *,
                    limit: int = 20) -> list[dict[str, Any]]:
        who = _principal(principal)
        rows = await self.driver.arun(self.records.matching(
            who.tenant, str_id(prefix, "request id"), limit_of(limit)), write=False)
        return [view(r, v) for r, v in rows]

    def history(self, thread_id: str,
                principal: Principal | dict[str, Any] | None) -> list[dict[str, Any]]:
        """Every request made on the thread, with its votes, oldest first (needs read access
        to the thread)."""
        who = _principal(principal) if principal is not None else None
        rows = self.driver.run(self.records.thread_history(str_id(thread_id, "thread_id"), who),
                               write=False)
        return [view(r, v) for r, v in rows]

    async def ahistory(self, thread_id: str,
                       principal: Principal | dict[str, Any] | None) -> list[dict[str, Any]]:
        who = _principal(principal) if principal is not None else None
        rows = await self.driver.arun(
            self.records.thread_history(str_id(thread_id, "thread_id"), who), write=False)
        return [view(r, v) for r, v in rows]

    def expire(self, now: float | None = None) -> list[str]:
        """Close the open requests whose time is up, as each one's on_expire says (reject, or
        escalate to other roles); returns their ids. The thread applies it when it next runs."""
        return self.driver.run(self._expire_op(time.time() if now is None else now), write=True)

    async def aexpire(self, now: float | None = None) -> list[str]:
        return await self.driver.arun(self._expire_op(time.time() if now is None else now),
                                      write=True)

    # -- standing approvals ----------------------------------------------------------------------

    def _standing_op(self, tid: str, who: Principal | None) -> Op[list[dict[str, Any]]]:
        yield from self.records.threads.authorize_op(tid, who, Access.READ)
        return [_standing_view(g) for g in (yield from self.records.standing_on(tid))]

    def standing(self, thread_id: str,
                 principal: Principal | dict[str, Any] | None) -> list[dict[str, Any]]:
        """The thread's standing approvals, oldest first, with the uses left (needs read
        access to the thread)."""
        who = _principal(principal) if principal is not None else None
        return self.driver.run(self._standing_op(str_id(thread_id, "thread_id"), who),
                               write=False)

    async def astanding(self, thread_id: str,
                        principal: Principal | dict[str, Any] | None) -> list[dict[str, Any]]:
        who = _principal(principal) if principal is not None else None
        return await self.driver.arun(self._standing_op(str_id(thread_id, "thread_id"), who),
                                      write=False)

    def _revoke_op(self, standing_id: str, who: Principal) -> Op[dict[str, Any]]:
        grant = yield from self.records.standing_by_id(standing_id)
        if grant is None or grant.tenant not in (None, who.tenant):
            raise ConfigError(f"no standing approval {standing_id!r} in tenant {who.tenant!r}: "
                              "list them with rt.approvals.standing(thread_id, principal).")
        if who.id != grant.granted_by and not set(grant.roles) & who.roles:
            try:  # else: whoever may write the thread (its owner, a granted role)
                yield from self.records.threads.authorize_op(grant.thread_id, who, Access.WRITE)
            except ThreadAccessDenied:
                raise ThreadAccessDenied(
                    f"{who.id!r} may not revoke standing approval {standing_id!r}: only its "
                    f"granter ({grant.granted_by!r}), a holder of one of its roles "
                    f"{list(grant.roles)}, or someone who may write thread "
                    f"{grant.thread_id!r} may.", thread_id=grant.thread_id) from None
        now = time.time()
        changed = yield from self.records.revoke_standing(standing_id, who.id, now)
        if changed:
            self.audit.record(grant.thread_id, "approval_standing_revoked",
                              {"standing_id": standing_id, "action": grant.action,
                               "granted_by": grant.granted_by, "used": grant.used},
                              principal=who)
            yield from self.audit.locked_flush_op(grant.thread_id)
            grant = replace(grant, revoked_at=now, revoked_by=who.id)
        return _standing_view(grant)

    def revoke(self, standing_id: str,
               principal: Principal | dict[str, Any]) -> dict[str, Any]:
        """End a standing approval now (audited in its thread's chain); returns it as it
        stands. Its granter, a holder of one of its roles, or whoever may write the thread
        may revoke it; revoking twice changes nothing."""
        return self.driver.run(self._revoke_op(str_id(standing_id, "standing id"),
                                               _principal(principal)), write=True)

    async def arevoke(self, standing_id: str,
                      principal: Principal | dict[str, Any]) -> dict[str, Any]:
        return await self.driver.arun(self._revoke_op(str_id(standing_id, "standing id"),
                                                      _principal(principal)), write=True)
