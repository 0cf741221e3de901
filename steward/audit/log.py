"""``rt.audit``: the per-thread hash chain in the runtime's database.

Events are gathered in memory as they happen and written by the saver in the transactions of
the writes and checkpoints they describe (the log is the saver's WriteParticipant), under the
thread row's lock: a process killed right after a node finished loses no event of that node,
and two workers cannot fork a chain (the events' key is (thread, sequence)). The chain's head
(sequence, hash) is recorded on the thread's row when a run ends, so that a deleted tail shows
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from steward.audit.chain import (
    GENESIS,
    Event,
    event_hash,
    payload_digest,
    verify_chain,
)
from steward.audit.erasures import Erasures
from steward.audit.export import Chain, write_export
from steward.audit.refusals import ACCESS_CHAIN, RefusalsAudited
from steward.checkpointers.participants import Joined
from steward.checkpointers.rows import ThreadRow
from steward.checkpointers.threads import Threads
from steward.errors import AuditTampered, ThreadAccessDenied
from steward.identity import Access, Principal
from steward.storage.codec import load_json
from steward.storage.drivers import json_param
from steward.storage.ops import Op, Stmt
from steward.storage.values import limit_of, seconds, str_id

if TYPE_CHECKING:
    from steward.guardrails.redact import Redactor
    from steward.storage.drivers import Driver

__all__ = ["AuditLog"]

_ROW = ("thread_id", "seq", "kind", "at", "tenant", "principal_id", "run_id", "node", "step",
        "checkpoint_ns", "checkpoint_id", "duration", "payload", "prev_hash", "hash",
        "payload_hash")
_COLS = ", ".join(_ROW)
# A chain as a reader gets it: its events, its head (seq, hash) if its thread's row keeps one,
# and the AuditTampered its reading found (a tombstone of an erasure that never happened).
Chained = tuple[list[Event], tuple[int, str | None] | None, AuditTampered | None]
_MAX_TEXT = 4000
# Ids and digests Steward mints: apr_…/std_… request and standing ids, stw-… idempotency keys,
# SHA-256 argument hashes. Hex runs now and then pass for a card number or an IBAN.
_MINTED = re.compile(r"[a-z]{3}_[0-9a-f]{24}|stw-[0-9a-f]{32}|[0-9a-f]{64}", re.ASCII)


def _row_event(row: Sequence[Any]) -> Event:
    """An event from a row of ``_COLS``, taken by name."""
    r = dict(zip(_ROW, row, strict=True))
    return Event(**{**r, "seq": int(r["seq"]), "at": float(r["at"]),
                    "step": int(r["step"]) if r["step"] is not None else None,
                    "duration": float(r["duration"]) if r["duration"] is not None else None,
                    "payload": load_json(r["payload"]) or {}})


def _plain(value: Any, depth: int = 0) -> Any:
    """Payloads as JSON-ready data, bounded: long texts cut, odd objects named by type."""
    if depth > 8:
        return "..."
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):  # NaN and infinities are not JSON (PostgreSQL refuses them)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        text = value.replace("\x00", "")
        return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + f"...(+{len(text)} chars)"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in list(value)[:100]]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _plain(dump(), depth + 1)
        except Exception:
            pass
    return _plain(str(value), depth + 1)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


# The audit events of a write (steward.audit), in the same statement. They follow the
# chain's last stored event the writing process knows of; if another writer moved the chain
# on, their (thread_id, seq) keys are taken and the statement fails (StaleView).
_CHAIN_KEY = "steward_audit_pkey"  # (thread_id, seq): two writers cannot fork a chain
AUDIT_CTE = (
    ", aud AS (INSERT INTO steward_audit (thread_id, seq, kind, at, tenant, principal_id, "
    "run_id, node, step, checkpoint_ns, checkpoint_id, duration, payload, prev_hash, hash, "
    "payload_hash) "
    "SELECT ?, u.seq, u.kind, u.at, u.tenant, u.principal_id, u.run_id, u.node, u.step, "
    "u.checkpoint_ns, ?, u.duration, u.payload, u.prev_hash, u.hash, u.payload_hash FROM "
    "jsonb_to_recordset(?::jsonb) AS u(seq bigint, kind text, at float8, tenant text, "
    "principal_id text, run_id text, node text, step bigint, checkpoint_ns text, "
    "duration float8, payload jsonb, prev_hash text, hash text, payload_hash text) "
    "WHERE (SELECT ok FROM ok) = 1) "
)



def _nothing() -> None:
    return None


class AuditLog:
    """``rt.audit``: gathers events, writes them with the writes they describe (a
    WriteParticipant of the saver), and reads, verifies, exports and streams the chains."""

    def __init__(self, driver: Driver, threads: Threads, redactor: Redactor, *,
                 verify_on_resume: bool = True) -> None:
        self.driver = driver
        self.threads = threads
        self.redactor = redactor
        self.verify_on_resume = verify_on_resume
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._heads: dict[str, tuple[int, str]] = {}  # thread -> its chain's last (seq, hash)
        self.runs: dict[str, str] = {}  # thread -> its current root run (set by the handler)
        self._lock = threading.Lock()
        self._wake = threading.Condition()  # subscribe waits on it, asubscribe on _waiters
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        # Reads as a principal go through it: another tenant's refused reads are audited.
        self._reads = RefusalsAudited(driver, self)
        self._j = j = json_param(driver.dialect)
        self._insert = (f"INSERT INTO steward_audit ({_COLS}) VALUES "
                        f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {j}, ?, ?, ?)")
        self.erasures = Erasures(driver.dialect)  # the audit's part of erasing a person

    # -- gathering -------------------------------------------------------------------------------

    def record(self, thread_id: str, kind: str, payload: Mapping[str, Any] | None = None, *,
               principal: Principal | None = None, run_id: str | None = None,
               node: str | None = None, step: int | None = None,
               checkpoint_ns: str | None = None, duration: float | None = None,
               at: float | None = None, redact: bool = True) -> None:
        """Gather one event; it is written with the thread's next write (redacted first,
        unless ``redact=False``: for payloads Steward builds from names, not values)."""
        event = {"kind": kind, "at": time.time() if at is None else at,
                 "tenant": principal.tenant if principal else None,
                 "principal_id": principal.id if principal else None,
                 "run_id": run_id or self.runs.get(thread_id),
                 "node": node, "step": step, "checkpoint_ns": checkpoint_ns,
                 "duration": duration,
                 "payload": self._redacted(payload or {}) if redact else dict(payload or {})}
        with self._lock:
            self._pending.setdefault(thread_id, []).append(event)

    def _redacted(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload redacted, but for the ids Steward mints at its top level (an approval
        request's ``apr_`` + 24 hex digits can look like an IBAN that passes mod 97)."""
        minted = {k for k, v in payload.items() if isinstance(v, str) and _MINTED.fullmatch(v)}
        out = _plain(self.redactor.redact({k: v for k, v in payload.items() if k not in minted}))
        return {k: payload[k] if k in minted else out[k] for k in payload}

    def personal_data(self, payload: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
        """Where a stored payload still holds what the redactor masks, as recording redacts
        it (ids Steward mints at its top level are not personal data): each place as a path
        (``args.customer``, ``items[2]``) with the detectors that fire there. Reports use it
        to find events that were written unredacted."""
        found: list[tuple[str, list[str]]] = []

        def walk(value: Any, path: str, depth: int) -> None:
            if depth > 32:
                return
            if isinstance(value, str):
                if self.redactor.redact_text(value) != value:
                    names = sorted({f.detector for f in self.redactor.findings(value)})
                    found.append((path, names))
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    if depth == 0 and isinstance(item, str) and _MINTED.fullmatch(item):
                        continue
                    walk(item, f"{path}.{key}" if path else str(key), depth + 1)
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    walk(item, f"{path}[{i}]", depth + 1)

        walk(payload, "", 0)
        return found

    def held(self, thread_id: str) -> bool:
        """Whether a run of this process holds the thread's lease (its release writes)."""
        return thread_id in self.threads.leases

    def pending(self, thread_id: str) -> bool:
        with self._lock:
            return bool(self._pending.get(thread_id))

    def begin_run(self, thread_id: str, row: ThreadRow) -> None:
        """A run takes the thread (its lease; ``row``: the thread's row, locked, saver
        ThreadRow); another process may have written since. The row holds the head the last
        run ended at: on PostgreSQL the run's first write is chained after it in one statement
        (and made again the careful way if a killed run wrote past it); on SQLite the head is
        read at the first write, which costs nothing there."""
        with self._lock:
            if self.driver.dialect == "postgres":
                self._heads[thread_id] = (int(row.audit_seq or 0), str(row.audit_head or GENESIS))
            else:
                self._heads.pop(thread_id, None)

    def _take(self, thread_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._pending.pop(thread_id, [])

    def _restore(self, thread_id: str, events: list[dict[str, Any]]) -> None:
        """Events whose write failed go back, ahead of any gathered since."""
        with self._lock:
            self._pending[thread_id] = events + self._pending.get(thread_id, [])
            self._heads.pop(thread_id, None)

    def _written(self, thread_id: str, head: tuple[int, str]) -> None:
        with self._lock:
            self._heads[thread_id] = head
            waiters = list(self._waiters)
        with self._wake:
            self._wake.notify_all()
        for loop, event in waiters:  # asubscribe's, on their own event loops
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def _chained(self, thread_id: str, checkpoint_id: str | None,
                 events: list[dict[str, Any]], seq: int, prev: str,
                 tenant: str | None) -> tuple[list[dict[str, Any]], int, str]:
        """The stored form of ``events`` chained after (seq, prev): each event's body (chain
        FIELDS) with its ``prev_hash`` and ``hash``; pure."""
        out = []
        for event in events:
            seq += 1
            body = {"thread_id": thread_id, "seq": seq, "kind": event["kind"], "at": event["at"],
                    "tenant": event["tenant"] or tenant, "principal_id": event["principal_id"],
                    "run_id": event["run_id"], "node": event["node"], "step": event["step"],
                    "checkpoint_ns": event["checkpoint_ns"], "checkpoint_id": checkpoint_id,
                    "duration": event["duration"], "payload": event["payload"]}
            payload_hash = payload_digest(body["payload"])
            digest = event_hash(prev, body, payload_hash)
            body["prev_hash"], body["hash"], body["payload_hash"] = prev, digest, payload_hash
            out.append(body)
            prev = digest
        return out, seq, prev

    def flush_op(self, thread_id: str, checkpoint_id: str | None,
                 row: ThreadRow | None = None, *, save_head: bool = False) -> Op[None]:
        """Write the thread's gathered events in the caller's transaction, which holds the
        thread row's lock: chained after the last stored event. ``row``: the thread's row as
        the transaction read it, for its tenant; ``save_head``: also record
        the chain's head on the row (when a run ends), so that a deleted tail shows."""
        events = self._take(thread_id)
        if not events:
            return
        with self._lock:
            # SQLite: the head is trusted while this process's run holds the thread's lease;
            # otherwise (and always on PostgreSQL, where it costs a round trip anyway) it is read
            # under the row lock the caller holds.
            known = self._heads.get(thread_id) if self.driver.dialect == "sqlite" \
                and thread_id in self.threads.leases else None
        try:
            if known is None:
                last = (yield Stmt("SELECT seq, hash FROM steward_audit WHERE thread_id = ? "
                                   "ORDER BY seq DESC LIMIT 1", (thread_id,))).one()
                known = (int(last[0]), str(last[1])) if last else (0, GENESIS)
            seq, prev = known
            chained, seq, prev = self._chained(thread_id, checkpoint_id, events, seq, prev,
                                               row.tenant if row else None)
            rows = [(*(e[name] for name in _ROW[:12]), _json(e["payload"]), e["prev_hash"],
                     e["hash"], e["payload_hash"]) for e in chained]
            yield Stmt(self._insert, rows, many=True, wait=False)
            if save_head:
                yield self.threads.save_head_stmt(thread_id, seq, prev)
        except BaseException:
            self._restore(thread_id, events)
            raise
        self._written(thread_id, (seq, prev))

    def joined(self, thread_id: str, checkpoint_id: str | None,
               tenant: str | None) -> Joined | None:
        """For a write that goes out as one statement (PostgreSQL): the events' CTE
        (``AUDIT_CTE``), its parameters, and what to call when the statement ran or failed;
        None when the chain's head is not known here or nothing is gathered. Chained after
        the head this process knows: if another writer moved the chain on, the statement
        fails on the events' keys and the write is made again the careful way, which reads the
        head under the row lock."""
        part = self._part(thread_id, checkpoint_id, tenant)
        return part if part is not None and part.cte else None

    def _part(self, thread_id: str, checkpoint_id: str | None,
              tenant: str | None) -> Joined | None:
        """The gathered events chained after the known head, with the head they leave as the
        thread row's ``audit_seq``/``audit_head`` (an empty CTE when nothing is gathered);
        None when the head is not known here."""
        with self._lock:
            head = self._heads.get(thread_id)
        if head is None:
            return None
        events = self._take(thread_id)
        if not events:
            return Joined("", [], _nothing, _nothing,
                          sets=(("audit_seq", head[0]), ("audit_head", head[1])))
        chained, seq, prev = self._chained(thread_id, checkpoint_id, events, head[0], head[1],
                                           tenant)
        params = [thread_id, checkpoint_id, _json(chained)]  # one parameter: cheap to send
        return Joined(AUDIT_CTE, params, lambda: self._written(thread_id, (seq, prev)),
                      lambda: self._restore(thread_id, events), stale_key=_CHAIN_KEY,
                      sets=(("audit_seq", seq), ("audit_head", prev)))

    # -- the saver's write participant ---------------------------------------------------------

    def joins(self, thread_id: str) -> bool:
        return self.pending(thread_id)

    def write_op(self, thread_id: str, checkpoint_id: str | None, row: ThreadRow) -> Op[None]:
        yield from self.flush_op(thread_id, checkpoint_id, row)

    def run_started_op(self, thread_id: str, row: ThreadRow) -> Op[None]:
        self.begin_run(thread_id, row)
        if self.verify_on_resume and row.waiting_on is not None:
            # The thread waited (an interrupt): it resumes only on an intact audit chain.
            yield from self.verify_op(thread_id)

    def run_ended_op(self, thread_id: str) -> Op[None]:
        yield from self.end_run_op(thread_id, None)

    def ended(self, thread_id: str, tenant: str | None) -> Joined | None:
        """A run's end in one statement (PostgreSQL): what is left, chained after the head
        this process knows, and that head recorded on the thread's row; None when the head is
        not known here (the careful way, ``end_run_op``, reads it under the row lock)."""
        return self._part(thread_id, None, tenant)

    def end_run_op(self, thread_id: str, row: ThreadRow | None) -> Op[None]:
        """A run ends (its lease is released, the row locked): write what is left and record
        the chain's head on the thread's row."""
        if self.pending(thread_id):
            yield from self.flush_op(thread_id, None, row, save_head=True)
            return
        with self._lock:
            head = self._heads.get(thread_id)
        if head is not None:
            yield self.threads.save_head_stmt(thread_id, *head)

    def flush(self, thread_id: str) -> None:
        """Write what is gathered for a thread now, in a transaction of its own (runs started
        with ``rt.config`` do this when they end)."""
        if self.pending(thread_id):
            self.driver.run(self._locked_flush(thread_id), write=True)

    async def aflush(self, thread_id: str) -> None:
        if self.pending(thread_id):
            await self.driver.arun(self._locked_flush(thread_id), write=True)

    def _locked_flush(self, thread_id: str) -> Op[None]:
        yield from self.locked_flush_op(thread_id)

    def locked_flush_op(self, thread_id: str) -> Op[None]:
        """Write what is gathered for a thread inside another operation's transaction, taking
        the thread row's lock first (a node's effect or vote is written with its events)."""
        if not self.pending(thread_id):
            return
        row = yield from self.threads.locked_op(thread_id)
        yield from self.flush_op(thread_id, None, row, save_head=row is not None)

    # -- reading ---------------------------------------------------------------------------------

    def _events_op(self, thread_id: str, principal: Principal | None, kinds: Sequence[str] | None,
                   since: float | None, until: float | None, after: int,
                   limit: int | None) -> Op[list[Event]]:
        tenant_chain = next((p for p in ("memory:", ACCESS_CHAIN) if thread_id.startswith(p)),
                            None)
        if tenant_chain is not None:  # a tenant's memory chain (steward.memory) or access chain
            tenant = thread_id.removeprefix(tenant_chain)
            if principal is None or principal.tenant != tenant:
                raise ThreadAccessDenied(f"the {tenant_chain[:-1]} chain of tenant {tenant!r} is "
                                         "read by a principal of that tenant.",
                                         thread_id=thread_id)
        else:
            yield from self.threads.authorize_op(thread_id, principal, Access.READ)
        sql = f"SELECT {_COLS} FROM steward_audit WHERE thread_id = ? AND seq > ?"
        params: list[Any] = [thread_id, after]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND at < ?"
            params.append(until)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit_of(limit))
        return [_row_event(r) for r in (yield Stmt(sql, params)).rows]

    def events(self, thread_id: str, principal: Principal | Mapping[str, Any] | None, *,
               kinds: Sequence[str] | None = None, since: float | None = None,
               until: float | None = None, after: int = 0,
               limit: int | None = None) -> list[Event]:
        """The thread's events in order (the thread access rule applies): filter by ``kinds``,
        by time (``since`` <= at < ``until``, epoch seconds), or take those after seq ``after``."""
        who = Principal.parse(principal) if principal is not None else None
        return self._reads.run(self._events_op(str_id(thread_id, "thread_id"), who, kinds,
                                               since, until, after, limit), write=False)

    async def aevents(self, thread_id: str, principal: Principal | Mapping[str, Any] | None, *,
                      kinds: Sequence[str] | None = None, since: float | None = None,
                      until: float | None = None, after: int = 0,
                      limit: int | None = None) -> list[Event]:
        who = Principal.parse(principal) if principal is not None else None
        return await self._reads.arun(self._events_op(str_id(thread_id, "thread_id"), who,
                                                      kinds, since, until, after, limit),
                                      write=False)

    def chain_op(self, thread_id: str) -> Op[tuple[list[Event], tuple[int, str | None] | None]]:
        """A chain's events in order and the head its thread's row keeps (None for a chain of
        no thread); AuditTampered if a tombstone names an erasure that never happened. No
        access check: the caller has made it."""
        events, head, missing = (yield from self.chains_op([thread_id]))[thread_id]
        if missing is not None:
            raise missing
        return events, head

    def chains_op(self, thread_ids: Sequence[str]) -> Op[dict[str, Chained]]:
        """``chain_op`` for several chains in one round trip (a report reads a tenant's):
        each chain's events, head, and the AuditTampered its reading found, or None."""
        if not thread_ids:
            return {}
        marks = ", ".join("?" for _ in thread_ids)
        heads, rows = yield (
            self.threads.heads_stmt(thread_ids),
            Stmt(f"SELECT {_COLS} FROM steward_audit WHERE thread_id IN ({marks}) "
                 "ORDER BY thread_id, seq", tuple(thread_ids)),
        )
        found: dict[str, list[Event]] = {tid: [] for tid in thread_ids}
        for r in rows.rows:
            found[r[0]].append(_row_event(r))
        head = {tid: (int(seq), h) for tid, seq, h in heads.rows}
        missing = yield from self.erasures.unreceipted_op(
            [e for events in found.values() for e in events])
        return {tid: (events, head.get(tid), missing.get(tid)) for tid, events in found.items()}

    def verify_op(self, thread_id: str) -> Op[int]:
        """Verify the chain inside a transaction (the saver's, before a paused thread resumes)."""
        events, head = yield from self.chain_op(thread_id)
        return verify_chain(thread_id, events, head)

    def verify(self, thread_id: str) -> int:
        """Check the thread's chain; returns how many events it holds, or raises
        AuditTampered naming the first event that was edited, deleted, inserted or moved."""
        tid = str_id(thread_id, "thread_id")
        events, head = self.driver.run(self.chain_op(tid), write=False)
        return verify_chain(tid, events, head)

    async def averify(self, thread_id: str) -> int:
        tid = str_id(thread_id, "thread_id")
        events, head = await self.driver.arun(self.chain_op(tid), write=False)
        return verify_chain(tid, events, head)

    def verify_all(self, principal: Principal | Mapping[str, Any]) -> dict[str, int]:
        """Verify every chain of the principal's tenant; returns events per thread, or raises
        AuditTampered for the first thread that fails. It names every thread of the tenant,
        so the principal needs a tenant-wide read (ThreadAccessDenied otherwise)."""
        return self.driver.run(self._verify_all_op(self._tenant_reader(principal)),
                               write=False)

    async def averify_all(self, principal: Principal | Mapping[str, Any]) -> dict[str, int]:
        return await self.driver.arun(self._verify_all_op(self._tenant_reader(principal)),
                                      write=False)

    def _tenant_reader(self, principal: Principal | Mapping[str, Any]) -> str:
        who = Principal.parse(principal)
        self.threads.access.check_tenant_read(who, "verifying every chain")
        return who.tenant

    def _verify_all_op(self, tenant: str) -> Op[dict[str, int]]:
        counts = {}
        for tid in (yield from self.threads.tenant_threads_op(tenant)):
            counts[tid] = yield from self.verify_op(tid)
        return counts

    # -- export ----------------------------------------------------------------------------------

    def export(self, path: str | Path, principal: Principal | Mapping[str, Any], *,
               thread_id: str | None = None) -> int:
        """Write a thread's (or, without ``thread_id``, the principal's tenant's) events as
        JSON Lines, with each chain's head, for ``steward audit verify --file``; returns the
        number of events written.

        The file appears whole or not at all: it is written beside ``path`` (readable by its
        owner only) and renamed at the end, so a refusal (ThreadAccessDenied) or any failure
        leaves ``path`` as it was. An export of no events is refused with ConfigError."""
        who = Principal.parse(principal)
        chains = self._reads.run(self._export_op(who, thread_id), write=False)
        return write_export(path, chains, who, thread_id)

    async def aexport(self, path: str | Path, principal: Principal | Mapping[str, Any], *,
                      thread_id: str | None = None) -> int:
        who = Principal.parse(principal)
        chains = await self._reads.arun(self._export_op(who, thread_id), write=False)
        return await asyncio.to_thread(write_export, path, chains, who, thread_id)

    def _export_op(self, who: Principal, thread_id: str | None) -> Op[list[Chain]]:
        """The chains to export, each read under the access rule, in one transaction."""
        threads = [str_id(thread_id, "thread_id")] if thread_id else \
            (yield from self.threads.tenant_threads_op(who.tenant))
        chains = []
        for tid in threads:
            yield from self.threads.authorize_op(tid, who, Access.READ)
            events, head = yield from self.chain_op(tid)
            chains.append((tid, events, head))
        return chains

    # -- streaming -------------------------------------------------------------------------------

    def _wait(self, timeout: float) -> None:
        with self._wake:
            self._wake.wait(timeout)

    def subscribe(self, thread_id: str, principal: Principal | Mapping[str, Any] | None, *,
                  after: int = 0, poll: float = 0.5,
                  stop: threading.Event | None = None) -> Iterator[Event]:
        """Events of a thread as they are written, from seq ``after`` on: written by this
        process they arrive at once, by others within ``poll`` seconds. Ends when ``stop``
        is set."""
        seconds("poll", poll)
        last = after
        while stop is None or not stop.is_set():
            batch = self.events(thread_id, principal, after=last)
            yield from batch
            if batch:
                last = batch[-1].seq
                continue
            self._wait(poll)

    async def asubscribe(self, thread_id: str, principal: Principal | Mapping[str, Any] | None,
                         *, after: int = 0, poll: float = 0.5,
                         stop: asyncio.Event | None = None) -> AsyncIterator[Event]:
        """The async twin of :meth:`subscribe`: the same batches, woken the same way."""
        seconds("poll", poll)
        last = after
        while stop is None or not stop.is_set():
            batch = await self.aevents(thread_id, principal, after=last)
            for event in batch:
                yield event
            if batch:
                last = batch[-1].seq
                continue
            await self._await(poll)

    async def _await(self, timeout: float) -> None:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)
