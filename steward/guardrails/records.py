"""Guardrail records: approval requests, their votes, and the actions guards authorized.

They live in the thread's database, outside its checkpoints, because they must outlast a
node that re-runs (a request keeps its id and expiry however often the node asks again) and
be queryable across threads (what may this manager approve?). Each function is an operation
(a generator of statements, see ``checkpointers._ops``) run in one transaction by the
saver's driver; reads and writes that concern a thread check the thread access rule first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from steward.guardrails.policy import ActionHistory
from steward.identity import Access, Principal
from steward.storage.codec import dump_json, load_json
from steward.storage.drivers import json_param
from steward.storage.ops import Op, Stmt

if TYPE_CHECKING:
    from steward.audit.log import AuditLog
    from steward.checkpointers.threads import Threads
    from steward.storage.drivers import Driver

# The columns read back, by name: a row is zipped with its names before any field is taken.
_REQUEST_NAMES = ("request_id", "thread_id", "task_ns", "seq", "tenant", "action", "args_hash",
                  "request", "required_roles", "requested_by", "quorum", "status", "on_expire",
                  "created_at", "expires_at", "decided_at", "successor")
_REQUEST_COLS = ", ".join(_REQUEST_NAMES)
_VOTE_NAMES = ("request_id", "voter", "position", "role", "decision", "comment", "args_hash",
               "at")
_VOTE_COLS = ", ".join(_VOTE_NAMES)
_STANDING_NAMES = ("standing_id", "thread_id", "tenant", "action", "roles", "request_id",
                   "granted_by", "uses", "used", "created_at", "expires_at", "revoked_at",
                   "revoked_by")
_STANDING_COLS = ", ".join(_STANDING_NAMES)


def _optional(value: Any) -> float | None:
    return float(value) if value is not None else None

PENDING, APPROVED, REJECTED, EXPIRED, ESCALATED, SUPERSEDED = (
    "pending", "approved", "rejected", "expired", "escalated", "superseded")


@dataclass(frozen=True)
class Request:
    request_id: str
    thread_id: str
    task_ns: str
    seq: int
    tenant: str | None
    action: str
    args_hash: str
    value: dict[str, Any]  # what the interrupt shows (args redacted)
    required_roles: tuple[str, ...]
    requested_by: str | None
    quorum: int
    status: str
    on_expire: dict[str, Any] | None
    created_at: float
    expires_at: float | None
    decided_at: float | None
    successor: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Request:
        """A request from a row of ``_REQUEST_COLS``."""
        r = dict(zip(_REQUEST_NAMES, row, strict=True))
        return cls(r["request_id"], r["thread_id"], r["task_ns"], int(r["seq"]), r["tenant"],
                   r["action"], r["args_hash"], load_json(r["request"]),
                   tuple(load_json(r["required_roles"])), r["requested_by"], int(r["quorum"]),
                   r["status"], load_json(r["on_expire"]), float(r["created_at"]),
                   _optional(r["expires_at"]), _optional(r["decided_at"]), r["successor"])

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class Vote:
    request_id: str
    voter: str
    position: int
    role: str | None
    decision: str
    comment: str | None
    args_hash: str  # of the arguments approved: the request's, or the voter's edit
    at: float
    args: dict[str, Any] | None = None  # edited arguments (kept in the thread, not here)
    standing: dict[str, Any] | None = None  # {"uses", "expires_in"} of a standing approval

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"voter": self.voter, "role": self.role, "decision": self.decision,
               "comment": self.comment, "args_hash": self.args_hash, "at": self.at}
        if self.args is not None:
            out["edited_args"] = self.args
        if self.standing is not None:
            out["standing"] = self.standing
        return out


@dataclass(frozen=True)
class StandingGrant:
    """A standing approval: ``action`` on one thread may pass ``uses`` more times without
    asking, when the policy would ask ``roles`` again, until ``expires_at``."""

    standing_id: str
    thread_id: str
    tenant: str | None
    action: str
    roles: tuple[str, ...]
    request_id: str
    granted_by: str
    uses: int
    used: int
    created_at: float
    expires_at: float
    revoked_at: float | None = None
    revoked_by: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StandingGrant:
        r = dict(zip(_STANDING_NAMES, row, strict=True))
        return cls(r["standing_id"], r["thread_id"], r["tenant"], r["action"],
                   tuple(load_json(r["roles"])), r["request_id"], r["granted_by"],
                   int(r["uses"]), int(r["used"]), float(r["created_at"]),
                   float(r["expires_at"]), _optional(r["revoked_at"]), r["revoked_by"])

    def usable(self, roles: Sequence[str], requester: str | None, now: float) -> bool:
        """Whether a call the policy sends to ``roles``, asked by ``requester``, may use it
        (four eyes: never the granter's own call)."""
        return (self.revoked_at is None and now < self.expires_at and self.used < self.uses
                and set(self.roles) == set(roles) and requester != self.granted_by)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.standing_id, "thread_id": self.thread_id, "action": self.action,
                "roles": list(self.roles), "request_id": self.request_id,
                "granted_by": self.granted_by, "uses": self.uses, "used": self.used,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "revoked_by": self.revoked_by}


@dataclass(frozen=True)
class Action:
    """A guarded call as first decided at its call site."""

    action: str
    args_hash: str
    effect: str
    decision: dict[str, Any]
    principal_id: str | None


def _vote(row: Sequence[Any]) -> Vote:
    """A vote from a row of ``_VOTE_COLS``."""
    r = dict(zip(_VOTE_NAMES, row, strict=True))
    return Vote(r["request_id"], r["voter"], int(r["position"]), r["role"], r["decision"],
                r["comment"], r["args_hash"], float(r["at"]))


class Records:
    """The statements of the guardrail tables, in the saver's dialect."""

    def __init__(self, driver: Driver, threads: Threads, audit: AuditLog) -> None:
        self.driver = driver
        self.threads = threads
        self.audit = audit
        self._j = j = json_param(driver.dialect)
        self._insert_request = (
            f"INSERT INTO steward_approvals ({_REQUEST_COLS}) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, {j}, {j}, ?, ?, ?, {j}, ?, ?, ?, ?)")
        self._insert_vote = (
            "INSERT INTO steward_votes (request_id, voter, thread_id, task_ns, position, role, "
            "decision, comment, args_hash, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self._upsert_action = (
            "INSERT INTO steward_actions (thread_id, task_ns, seq, checkpoint_id, action, "
            f"args_hash, effect, numbers, decision, principal_id, at) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, {j}, {j}, ?, ?) "
            "ON CONFLICT (thread_id, task_ns, seq) DO UPDATE SET checkpoint_id = "
            "excluded.checkpoint_id, action = excluded.action, args_hash = excluded.args_hash, "
            "effect = excluded.effect, numbers = excluded.numbers, "
            "decision = excluded.decision, principal_id = excluded.principal_id, "
            "at = excluded.at")

    # -- inside a node: the thread is the run's own, its access was checked by the run --------

    def thread_identity(self, thread_id: str) -> Op[tuple[str | None, str | None]]:
        row = yield from self.threads.row_op(thread_id)
        return (row.tenant, row.owner) if row else (None, None)

    def site(self, thread_id: str, task_ns: str, seq: int) -> Op[tuple[list[Request], dict[int,
                                                                                    Vote]]]:
        """The requests made at one call site (oldest first) and the votes the task's
        resumes carried, by position."""
        found, votes = yield (
            Stmt(f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE thread_id = ? AND "
                 "task_ns = ? AND seq = ? ORDER BY created_at, request_id",
                 (thread_id, task_ns, seq)),
            Stmt(f"SELECT {_VOTE_COLS} FROM steward_votes WHERE thread_id = ? AND task_ns = ?",
                 (thread_id, task_ns)),
        )
        return ([Request.from_row(r) for r in found.rows],
                {v.position: v for v in map(_vote, votes.rows)})

    def votes(self, request_ids: Sequence[str]) -> Op[list[Vote]]:
        if not request_ids:
            return []
        marks = ", ".join("?" for _ in request_ids)
        rows = (yield Stmt(f"SELECT {_VOTE_COLS} FROM steward_votes WHERE request_id IN "
                           f"({marks}) ORDER BY at, voter", tuple(request_ids))).rows
        return [_vote(r) for r in rows]

    def create(self, request: Request) -> Op[None]:
        r = request
        yield Stmt(self._insert_request, (
            r.request_id, r.thread_id, r.task_ns, r.seq, r.tenant, r.action, r.args_hash,
            dump_json(r.value), dump_json(list(r.required_roles)), r.requested_by, r.quorum,
            r.status, dump_json(r.on_expire) if r.on_expire is not None else None,
            r.created_at, r.expires_at, r.decided_at, r.successor))

    def set_status(self, request_id: str, status: str, *, decided_at: float | None,
                   successor: str | None = None, expect: str | None = None) -> Op[int]:
        sql = ("UPDATE steward_approvals SET status = ?, decided_at = ?, successor = "
               "coalesce(?, successor) WHERE request_id = ?")
        params: tuple[Any, ...] = (status, decided_at, successor, request_id)
        if expect is not None:
            sql += " AND status = ?"
            params += (expect,)
        changed: int = (yield Stmt(sql, params)).rowcount
        return changed

    def add_vote(self, vote: Vote, thread_id: str, task_ns: str, *,
                 standing: StandingGrant | None = None) -> Op[None]:
        """Record a vote (and the standing approval it grants), with the audit events gathered
        so far (the vote's own among them)."""
        v = vote
        yield Stmt(self._insert_vote, (v.request_id, v.voter, thread_id, task_ns, v.position,
                                       v.role, v.decision, v.comment, v.args_hash, v.at))
        if standing is not None:
            g = standing
            yield Stmt(f"INSERT INTO steward_standing ({_STANDING_COLS}) VALUES "
                       f"(?, ?, ?, ?, {self._j}, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (g.standing_id, g.thread_id, g.tenant, g.action, dump_json(list(g.roles)),
                        g.request_id, g.granted_by, g.uses, g.used, g.created_at, g.expires_at,
                        None, None), wait=False)
        yield from self.audit.locked_flush_op(thread_id)

    def use_standing(self, thread_id: str, action: str, roles: Sequence[str],
                     requester: str | None, now: float) -> Op[StandingGrant | None]:
        """Use one of the thread's standing approvals for ``action`` that fits (oldest first),
        counting the use; None when none does."""
        rows = (yield Stmt(
            f"SELECT {_STANDING_COLS} FROM steward_standing WHERE thread_id = ? AND action = ? "
            "AND revoked_at IS NULL AND expires_at > ? AND used < uses "
            "ORDER BY created_at, standing_id", (thread_id, action, now))).rows
        for grant in map(StandingGrant.from_row, rows):
            if not grant.usable(roles, requester, now):
                continue
            taken: int = (yield Stmt(
                "UPDATE steward_standing SET used = used + 1 WHERE standing_id = ? AND "
                "used < uses AND revoked_at IS NULL", (grant.standing_id,))).rowcount
            if taken:
                return replace(grant, used=grant.used + 1)
        return None

    def standing_on(self, thread_id: str) -> Op[list[StandingGrant]]:
        rows = (yield Stmt(f"SELECT {_STANDING_COLS} FROM steward_standing WHERE thread_id = ? "
                           "ORDER BY created_at, standing_id", (thread_id,))).rows
        return [StandingGrant.from_row(r) for r in rows]

    def standing_by_id(self, standing_id: str) -> Op[StandingGrant | None]:
        row = (yield Stmt(f"SELECT {_STANDING_COLS} FROM steward_standing WHERE "
                          "standing_id = ?", (standing_id,))).one()
        return StandingGrant.from_row(row) if row else None

    def revoke_standing(self, standing_id: str, by: str, now: float) -> Op[int]:
        changed: int = (yield Stmt(
            "UPDATE steward_standing SET revoked_at = ?, revoked_by = ? WHERE standing_id = ? "
            "AND revoked_at IS NULL", (now, by, standing_id))).rowcount
        return changed

    def action_at(self, thread_id: str, task_ns: str, seq: int) -> Op[Action | None]:
        row = (yield Stmt("SELECT action, args_hash, effect, decision, principal_id FROM "
                          "steward_actions WHERE thread_id = ? AND task_ns = ? AND seq = ?",
                          (thread_id, task_ns, seq))).one()
        return Action(row[0], row[1], row[2], load_json(row[3]), row[4]) if row else None

    def record_action(self, thread_id: str, task_ns: str, seq: int, checkpoint_id: str,
                      action: str, args_hash: str, effect: str, numbers: dict[str, str],
                      decision: dict[str, Any], principal_id: str | None) -> Op[None]:
        yield Stmt(self._upsert_action, (thread_id, task_ns, seq, checkpoint_id, action,
                                         args_hash, effect, dump_json(numbers),
                                         dump_json(decision), principal_id, time.time()))

    def history(self, thread_id: str, task_ns: str, seq: int,
                checkpoint_id: str) -> Op[dict[str, ActionHistory]]:
        """What the thread already did with each action, for the policy's context: calls
        authorized at other call sites; "succeeded" when the graph has moved past their step
        (a step that fails or waits makes no newer checkpoint)."""
        rows = (yield Stmt(
            "SELECT action, effect, numbers, checkpoint_id, task_ns, seq FROM steward_actions "
            "WHERE thread_id = ? AND effect IN ('allow', 'approved')", (thread_id,))).rows
        acc: dict[str, dict[str, Any]] = {}
        for action, effect, numbers, cid, ns, s in rows:
            if (ns, s) == (task_ns, seq):
                continue
            entry = acc.setdefault(action, {"count": 0, "succeeded": 0, "approved": False,
                                            "totals": {}})
            entry["count"] += 1
            entry["succeeded"] += 1 if cid < checkpoint_id and ns != task_ns else 0
            entry["approved"] = entry["approved"] or effect == "approved"
            for name, text in (load_json(numbers) or {}).items():
                try:
                    entry["totals"][name] = entry["totals"].get(name, Decimal(0)) + Decimal(text)
                except InvalidOperation:
                    continue
        return {a: ActionHistory(e["count"], e["succeeded"], e["approved"], e["totals"])
                for a, e in acc.items()}

    # -- from outside a graph: each read checks the thread access rule ------------------------

    def pending(self, principal: Principal, limit: int) -> Op[list[tuple[Request, list[Vote]]]]:
        """Requests of the principal's tenant that it may vote on now (oldest first)."""
        rows = (yield Stmt(
            f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE tenant = ? AND status = ? "
            "ORDER BY created_at", (principal.tenant, PENDING))).rows
        now = time.time()
        candidates = [r for r in map(Request.from_row, rows)
                      if r.requested_by != principal.id and not r.expired(now)
                      and set(r.required_roles) & principal.roles]
        votes = yield from self.votes([r.request_id for r in candidates])
        out = []
        for request in candidates:
            mine = [v for v in votes if v.request_id == request.request_id]
            if any(v.voter == principal.id for v in mine):
                continue
            out.append((request, mine))
            if len(out) >= limit:
                break
        return out

    def open_on(self, thread_id: str) -> Op[list[Request]]:
        """The thread's pending requests (the caller checked the access rule)."""
        rows = (yield Stmt(f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE thread_id = ? "
                           "AND status = ? ORDER BY created_at, request_id",
                           (thread_id, PENDING))).rows
        return [Request.from_row(r) for r in rows]

    def matching(self, tenant: str, prefix: str,
                 limit: int) -> Op[list[tuple[Request, list[Vote]]]]:
        """Requests of a tenant whose id starts with ``prefix``, open ones first, then by age."""
        rows = (yield Stmt(
            f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE tenant = ? AND "
            "substr(request_id, 1, ?) = ? ORDER BY CASE WHEN status = ? THEN 0 ELSE 1 END, "
            "created_at, request_id LIMIT ?", (tenant, len(prefix), prefix, PENDING, limit))).rows
        requests = [Request.from_row(r) for r in rows]
        votes = yield from self.votes([r.request_id for r in requests])
        return [(r, [v for v in votes if v.request_id == r.request_id]) for r in requests]

    def erase_op(self, ids: Sequence[str], tenant: str, voter: str, tombstone: str) -> Op[int]:
        """An erasure: the requests of threads ``ids`` replaced by ``tombstone`` (JSON), their
        votes' comments dropped, and the comments ``voter`` left on the tenant's other threads;
        returns how many of those comments went."""
        j = self._j
        if ids:
            marks = ", ".join("?" for _ in ids)
            yield Stmt(f"UPDATE steward_votes SET comment = NULL WHERE thread_id IN ({marks})",
                       tuple(ids), wait=False)
            yield Stmt(f"UPDATE steward_approvals SET request = {j} WHERE thread_id IN "
                       f"({marks})", (tombstone, *ids), wait=False)
        comments: int = (yield Stmt(
            "UPDATE steward_votes SET comment = NULL WHERE voter = ? AND comment IS NOT NULL "
            "AND request_id IN (SELECT request_id FROM steward_approvals WHERE tenant = ?)",
            (voter, tenant))).rowcount
        return max(comments, 0)

    def thread_history(self, thread_id: str,
                       principal: Principal | None) -> Op[list[tuple[Request, list[Vote]]]]:
        yield from self.threads.authorize_op(thread_id, principal, Access.READ)
        rows = (yield Stmt(f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE thread_id = ? "
                           "ORDER BY created_at, request_id", (thread_id,))).rows
        requests = [Request.from_row(r) for r in rows]
        votes = yield from self.votes([r.request_id for r in requests])
        return [(r, [v for v in votes if v.request_id == r.request_id]) for r in requests]

    def due(self, now: float) -> Op[list[Request]]:
        rows = (yield Stmt(f"SELECT {_REQUEST_COLS} FROM steward_approvals WHERE status = ? "
                           "AND expires_at IS NOT NULL AND expires_at <= ?", (PENDING, now))).rows
        return [Request.from_row(r) for r in rows]
