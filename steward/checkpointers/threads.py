"""The thread rows: identity, the access rule at the database, leases, status, subjects.

``Threads`` owns the ``steward_threads`` and ``steward_subjects`` tables. Every write of the
saver claims its thread first (``claim_op``): the first write by a principal binds the thread,
every write is checked against the access rule and fenced by the thread's lease, and what the
write changes (binding, status, what the thread waits on, the lease) is recorded on the row.
The parts that read threads' data from outside a run (audit, approvals, erasure) check the
same rule through ``authorize_op``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from steward.checkpointers.configs import subjects_of
from steward.checkpointers.rows import InfoRow, ThreadRow, WriteCtx, thread_row, voters
from steward.checkpointers.sql import Sql
from steward.errors import ConfigError, ThreadAccessDenied, ThreadBusy
from steward.identity import Access, AccessRule, Principal, ThreadIdentity, Vote
from steward.storage.codec import dump_json, load_json
from steward.storage.drivers import Driver
from steward.storage.liveness import PG_SESSION_ALIVE, PG_SESSIONS_ALIVE, local_alive
from steward.storage.ops import Op, Result, StaleView, Stmt
from steward.storage.values import limit_of, seconds, seconds_or_none, str_id

# What a thread row's status can be: waiting on nothing, leased by a run, waiting (on an
# approval, say), or emptied by an erasure (steward.memory.erase). "stalled" is a running
# thread whose run is gone (its process died, or its lease ran out): read, not stored.
STATUSES = ("idle", "running", "interrupted", "erased", "stalled")
_VIEWS = 10_000  # thread rows remembered for optimistic writes
_Ids = list[str]
_Dicts = list[dict[str, Any]]
_Params = list[Any]


class Threads:
    """The thread table of one database, shared by the saver and the parts that read threads
    (and by the saver's ``with_allowlist`` copies, so every copy fences the same way)."""

    def __init__(self, driver: Driver, *, access: AccessRule | None = None,
                 default_ttl: float | None = None, lease_ttl: float = 30.0) -> None:
        lease_ttl = seconds("lease_ttl", lease_ttl)
        default_ttl = seconds_or_none("default_ttl", default_ttl)
        self.driver = driver
        self.sql = Sql(driver.dialect)
        self.access = access or AccessRule()
        self.default_ttl = default_ttl
        self.lease_ttl = lease_ttl
        # Leases held by runs in this process: thread_id -> holder.
        self.leases: dict[str, str] = {}
        # The thread rows this process wrote last (optimistic writes, see claim_op).
        self._views: OrderedDict[str, ThreadRow] = OrderedDict()
        self._views_lock = threading.Lock()  # LangGraph writes from several threads at once
        # Per thread, the remembered row fast_view last let through unchanged, with who wrote
        # and the run of this process holding the lease then (see fast_view).
        self._steady: dict[str, tuple[ThreadRow, Principal | None, str | None]] = {}
        # Threads whose runs here committed steps not yet flushed to disk (durability "async",
        # see StewardSaver.put): the leases' next renewal, or the run's release, flushes them.
        self._unflushed: set[str] = set()
        self._unflushed_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    @staticmethod
    def identity(tid: str, row: ThreadRow | None) -> ThreadIdentity | None:
        if row is None:
            return None
        return ThreadIdentity(tid, row.tenant, row.owner, voters(row.waiting_on),
                              row.resumed_by)

    def check_lease(self, tid: str, row: ThreadRow, now: float, *,
                     taking: str | None = None) -> None:
        """Raise ThreadBusy unless this write may go ahead under the thread's lease: written
        by the run holding it (this process's), or with no live lease held by another run.
        ``taking``: the holder about to take the lease."""
        lease_owner, lease_expires = row.lease_owner, row.lease_expires_at
        mine = taking or self.leases.get(tid)
        if mine is not None and taking is None:
            if lease_owner != mine:
                raise ThreadBusy(
                    f"this run lost its lease on thread {tid!r} (it expired and another run took "
                    "the thread over); its writes are refused. Re-run from the thread's latest "
                    "state, and raise lease_ttl if runs stall longer than it.",
                    thread_id=tid,
                )
            return
        if lease_owner not in (None, mine) and lease_expires is not None and lease_expires > now:
            raise ThreadBusy(
                f"thread {tid!r} is being run by another run right now: retry when it has "
                f"finished (its lease expires in {lease_expires - now:.1f}s unless renewed).",
                thread_id=tid, expires_in=lease_expires - now,
            )

    def authorize_op(self, tid: str, principal: Principal | None, need: Access, *,
                     vote: Vote | None = None) -> Op[ThreadRow | None]:
        """Check an existing thread (no binding) under the access rule, locking its row for
        more than reading; returns its row or None. ``vote``: see ``AccessRule.check``."""
        sql = self.sql.select_thread_for_update if need > Access.READ else self.sql.select_thread
        row = thread_row((yield Stmt(sql, (tid,))).one())
        self.access.check(principal, self.identity(tid, row), need, vote=vote)
        if row is not None and need > Access.READ:
            self.check_lease(tid, row, time.time())
        return row

    def check_op(self, tid: str, principal: Principal | None, need: Access, *,
                 vote: Vote | None = None) -> Op[None]:
        """The access rule alone, on the thread's row as it stands (no lock, no lease): for a
        host that decides before it starts anything (the LangGraph server's auth handlers)."""
        row = thread_row((yield Stmt(self.sql.select_thread, (tid,))).one())
        self.access.check(principal, self.identity(tid, row), need, vote=vote)

    def row_op(self, tid: str) -> Op[ThreadRow | None]:
        """The thread's row, unchecked (for a run whose access was checked when it started)."""
        return thread_row((yield Stmt(self.sql.select_thread, (tid,))).one())

    def tenant_threads_op(self, tenant: str) -> Op[list[str]]:
        """The ids of a tenant's threads, in order (the caller acts for that tenant)."""
        rows = (yield Stmt("SELECT thread_id FROM steward_threads WHERE tenant = ? "
                           "ORDER BY thread_id", (tenant,))).rows
        return [r[0] for r in rows]

    def about_op(self, tenant: str, subject: str) -> Op[list[str]]:
        """The tenant's threads a person owns or is a subject of, not erased yet."""
        rows = (yield Stmt(
            "SELECT thread_id FROM steward_threads WHERE tenant = ? AND status <> 'erased' AND "
            "(owner = ? OR thread_id IN (SELECT thread_id FROM steward_subjects WHERE "
            "tenant = ? AND subject = ?)) ORDER BY thread_id",
            (tenant, subject, tenant, subject))).rows
        return [r[0] for r in rows]

    def erased_op(self, ids: Sequence[str], tenant: str, subject: str) -> Op[None]:
        """Mark threads ``erased`` (their working context is gone) and forget the subject."""
        if ids:
            marks = ", ".join("?" for _ in ids)
            yield Stmt("UPDATE steward_threads SET status = 'erased', waiting_on = NULL, "
                       f"waiting_at = NULL, rev = rev + 1, updated_at = ? WHERE thread_id IN "
                       f"({marks})", (time.time(), *ids), wait=False)
        yield Stmt("DELETE FROM steward_subjects WHERE tenant = ? AND subject = ?",
                   (tenant, subject), wait=False)

    def heads_stmt(self, tids: Sequence[str]) -> Stmt:
        """Reads the heads of the threads' audit chains kept on their rows: (thread, seq,
        hash) for each thread that has a row."""
        return Stmt("SELECT thread_id, audit_seq, audit_head FROM steward_threads WHERE "
                    f"thread_id IN ({', '.join('?' for _ in tids)})", tuple(tids))

    def save_head_stmt(self, tid: str, seq: int, head: str) -> Stmt:
        """Keeps the head of the thread's audit chain on its row (the row is locked)."""
        return Stmt("UPDATE steward_threads SET audit_seq = ?, audit_head = ? "
                    "WHERE thread_id = ?", (seq, head, tid), wait=False)

    def locked_op(self, tid: str) -> Op[ThreadRow | None]:
        """The thread's row, locked until the transaction ends (no access check: the caller is
        a part writing for a run that was checked)."""
        return thread_row((yield Stmt(self.sql.select_thread_for_update, (tid,))).one())

    def claim_op(
        self,
        tid: str,
        principal: Principal | None,
        *,
        ttl: float | None = None,
        at: tuple[str, str] | None = None,
        interrupts: list[dict[str, Any]] | None = None,
        lease: str | None = None,
        ctx: WriteCtx | None = None,
        vote: Vote | None = None,
        process: str | None = None,
        also: Sequence[Stmt] = (),
        found: list[Result] | None = None,
    ) -> Op[ThreadRow]:
        """Authorize a write: create and bind the thread on first write, check access and the
        lease, and record on the thread row what the write changes (``at`` is the written
        checkpoint's (ns, id); ``interrupts`` what a write makes the thread wait on). Returns
        the row as the write leaves it, which an optimistic ``ctx`` remembers (fast_view).
        ``vote`` says what the write does, for the approver's reach (``AccessRule.check``);
        ``process`` is the lease holder's process (``Driver.holder``), recorded with a lease.
        A live lease whose holder's process is gone is void at once (``holder_gone_op``).

        One round trip creates the row if the thread is new, locks it and returns the identity
        and lease to check, with the statements ``also`` asks for (their results go to
        ``found``); the row is written only when its binding, status or lease changes."""
        now = time.time()
        ttl = ttl if ttl is not None else self.default_ttl
        results = yield (
            Stmt(self.sql.ensure_thread, (tid, principal.tenant if principal else None,
                                          principal.id if principal else None, now, now,
                                          now + ttl if ttl else None), wait=False),
            Stmt(self.sql.lock_thread, (tid,)), *also)
        if found is not None:
            found.extend(results[2:])
        row = thread_row(results[1].one())
        assert row is not None
        reach = self.access.check(principal, self.identity(tid, row), Access.WRITE, vote=vote)
        void = row.lease_owner not in (None, lease, self.leases.get(tid)) and (
            yield from self.holder_gone_op(row, now))
        if void:  # its holder's process is gone: the lease is void, now
            row = row._replace(lease_owner=None, lease_expires_at=None, lease_holder=None)
        self.check_lease(tid, row, now, taking=lease)
        holder = lease or (row.lease_owner if row.lease_expires_at is not None
                           and row.lease_expires_at > now else None)
        sets, params, new = self._changes(row, principal, at, interrupts, lease, holder, now,
                                          reach, process)
        if void and lease is None:
            sets += ["lease_owner = NULL", "lease_expires_at = NULL", "lease_holder = NULL"]
        if sets:
            sets += ["updated_at = ?", "rev = rev + 1"]
            yield Stmt(f"UPDATE steward_threads SET {', '.join(sets)} WHERE thread_id = ?",
                       (*params, now, tid), wait=False)
        if ctx is not None and ctx.optimistic:
            ctx.views[tid] = new
        return new

    def fast_view(self, tid: str, principal: Principal | None, *,
                   at: tuple[str, str] | None = None,
                   interrupts: list[dict[str, Any]] | None = None,
                  ctx: WriteCtx | None = None) -> ThreadRow | None:
        """The cached row, when a write may go out as one statement (Postgres): the row this
        process saw last lets the write through and the write changes nothing on it. The
        statement carries a guard (``Sql._guarded``) that fails it, as ``StaleView``, if the
        row changed since; the saver then runs the operation again the careful way."""
        if ctx is None or not ctx.optimistic:
            return None
        row = self.view(tid)
        now = time.time()
        if row is None:
            return None
        # A run's steps write the same remembered row again and again: the verdict on that
        # very row, by the same principal under the same lease of this process, stands (the
        # access rule and the changes are functions of them) until the row's lease runs out,
        # which changes who holds it. Interrupts change the row, so they are always checked.
        mine = self.leases.get(tid)
        steady = self._steady.get(tid)
        if steady is not None and interrupts is None and steady[0] is row \
                and steady[2] == mine and steady[1] == principal \
                and (row.lease_expires_at is None or row.lease_expires_at > now):
            return row
        if not self._passes(tid, principal, row, now):
            return None
        holder = row.lease_owner if row.lease_expires_at is not None \
            and row.lease_expires_at > now else None
        sets, _, _ = self._changes(row, principal, at, interrupts, None, holder, now)
        if sets:
            return None
        if interrupts is None and row.waiting_at is None:  # else ``at`` may change the row
            with self._views_lock:
                self._steady[tid] = (row, principal, mine)
        return row

    def guard_op(self, tid: str, row: ThreadRow) -> Op[None]:
        """SQLite's guard for a write trusting the row this process saw last (fast_view):
        read under the write lock the transaction holds, so the row cannot change before it
        commits; StaleView (the careful way) if it changed since (``Sql._guarded`` is the
        Postgres twin, inside the write's one statement)."""
        holder = self.leases.get(tid)
        fence = "lease_owner = ?" if holder else "(lease_owner IS NULL OR lease_expires_at <= ?)"
        found = (yield Stmt("SELECT 1 FROM steward_threads WHERE thread_id = ? AND rev = ? "
                            f"AND created_at = ? AND {fence}",
                            (tid, row.rev, row.created_at,
                             holder if holder else time.time()))).one()
        if found is None:
            raise StaleView

    def holder_gone_op(self, row: ThreadRow, now: float) -> Op[bool]:
        """Whether a live lease's holder process is known to be gone: its PostgreSQL session
        ended, or, on this host, its process died (``storage.liveness``). False when nobody
        can tell (another host, a hung process): such a lease runs out after lease_ttl."""
        token = row.lease_holder
        if token is None or row.lease_expires_at is None or row.lease_expires_at <= now:
            return False
        if token.startswith("pg:"):
            if self.driver.dialect != "postgres":
                return False
            alive = (yield Stmt(PG_SESSION_ALIVE, (token,))).rows[0][0]
            return not alive
        return local_alive(token) is False

    def _changes(self, row: ThreadRow, principal: Principal | None,
                 at: tuple[str, str] | None, interrupts: list[dict[str, Any]] | None,
                 lease: str | None, holder: str | None, now: float, reach: bool = False,
                 process: str | None = None) -> tuple[list[str], list[Any], ThreadRow]:
        """What a write changes on its thread's row: SET clauses, their values, the new row.
        ``reach``: the write is allowed by the approver's reach alone."""
        sets: list[str] = []
        params: list[Any] = []
        if row.tenant is None and principal is not None:  # the first write by a principal binds
            sets += ["tenant = ?", "owner = ?"]
            params += [principal.tenant, principal.id]
        resumed_by = row.resumed_by
        if reach and principal is not None:
            resumed_by = principal.id  # the run an approver resumed may go on, as theirs
        elif principal is not None:
            resumed_by = None  # someone with access of their own writes: the reach ends
        if resumed_by != row.resumed_by:
            sets.append("resumed_by = ?")
            params.append(resumed_by)
        waiting, waiting_at = load_json(row.waiting_on), row.waiting_at
        if interrupts is not None and at is not None:
            # Interrupts of one checkpoint add up (parallel tasks may each pause); a task that
            # pauses again (a node re-run after a resume) replaces what it waited on before.
            tasks = {i.get("task") for i in interrupts}
            kept = [w for w in (waiting if waiting_at == at[1] and waiting else [])
                    if w.get("task") not in tasks]
            waiting = kept + interrupts
            waiting_at = at[1]
        elif at is not None and at[0] == "" and waiting_at is not None and waiting_at < at[1]:
            # A newer root checkpoint means the thread moved past what it waited on. (With
            # durability="async" the interrupt's checkpoint may be written after its writes,
            # hence the comparison rather than clearing on every put.)
            waiting, waiting_at = None, None
        if waiting_at != row.waiting_at or waiting != load_json(row.waiting_on):
            # What it waits on changed: a timer that fired on the old wait is spent.
            sets += [f"waiting_on = {self.sql.json_param}", "waiting_at = ?", "wake = NULL"]
            params += [dump_json(waiting) if waiting else None, waiting_at]
        status = "interrupted" if waiting else "running" if holder else "idle"
        if lease is not None:
            # A run starts: it sees what a timer left (it is the wake-up), hence "wake = NULL".
            sets += ["lease_owner = ?", "lease_expires_at = ?", "lease_holder = ?",
                     "lease_epoch = lease_epoch + 1", "wake = NULL"]
            params += [lease, now + self.lease_ttl, process]
            if principal is not None and not reach:
                # Whom a worker wakes the thread as (``due_op``): a run by a principal with
                # access of its own; an approver's resume goes on as the run it resumed.
                sets.append("run_as = ?")
                params.append(dump_json(principal.to_dict()))
        if status != row.status or lease is not None:
            sets.append("status = ?")
            params.append(status)
        new = row._replace(status=status, waiting_on=dump_json(waiting) if waiting else None,
                           waiting_at=waiting_at, rev=row.rev + 1 if sets else row.rev,
                           resumed_by=resumed_by)
        if row.tenant is None and principal is not None:
            new = new._replace(tenant=principal.tenant, owner=principal.id)
        if lease is not None:
            new = new._replace(lease_owner=lease, lease_expires_at=now + self.lease_ttl,
                               lease_holder=process)
        return sets, params, new

    def _passes(self, tid: str, principal: Principal | None, row: ThreadRow,
                now: float) -> bool:
        """Whether a cached row lets the write through; errors come only from fresh rows."""
        try:
            self.access.check(principal, self.identity(tid, row), Access.WRITE)
            self.check_lease(tid, row, now)
        except (ThreadAccessDenied, ThreadBusy):
            return False
        return True

    def view(self, tid: str) -> ThreadRow | None:
        """The row this process saw last (fast_view), if it remembers one."""
        with self._views_lock:
            return self._views.get(tid)

    def drop_view(self, tid: str) -> None:
        with self._views_lock:
            self._views.pop(tid, None)
            self._steady.pop(tid, None)

    def forget(self) -> None:
        """Trust no remembered row (another process changed threads, or a write failed)."""
        with self._views_lock:
            self._views.clear()
            self._steady.clear()

    def remember(self, views: Mapping[str, ThreadRow]) -> None:
        """The rows a committed write left, for the next optimistic write (fast_view)."""
        with self._views_lock:
            for tid, row in views.items():
                self._views[tid] = row
                self._views.move_to_end(tid)
            while len(self._views) > _VIEWS:
                self._steady.pop(self._views.popitem(last=False)[0], None)

    def acquire_op(self, tid: str, holder: str, principal: Principal | None,
                   ttl: float | None, subjects: Sequence[str] = (),
                   vote: Vote | None = None, process: str | None = None,
                   also: Sequence[Stmt] = (), found: list[Result] | None = None,
                   ) -> Op[ThreadRow]:
        """Take the thread's lease for ``holder`` (creating and binding the thread on its first
        run) and record ``subjects``; returns the row as it leaves it. ``vote``: the run
        resumes the thread (``"resume"``) or goes on from where it stopped (``"run"``);
        ``also``/``found``: reads to make in the same round trip (``claim_op``)."""
        row = yield from self.claim_op(tid, principal, ttl=ttl, lease=holder, vote=vote,
                                       process=process, also=also, found=found)
        yield from self._subjects_op(tid, row.tenant, subjects)
        return row

    def _subjects_op(self, tid: str, tenant: str | None, subjects: Sequence[str]) -> Op[None]:
        """Record whose personal data the thread holds (its subjects), for erasure; adding a
        subject twice is a no-op. The caller has checked the principal may write the thread."""
        if subjects:
            now = time.time()
            yield Stmt(self.sql.insert_subject, [(tid, s, tenant, now) for s in subjects],
                       many=True, wait=False)

    def _add_subjects_op(self, tid: str, principal: Principal | None,
                         subjects: Sequence[str]) -> Op[None]:
        """``steward.add_subjects`` inside a node: the run holds the thread's lease, so only
        the access rule is checked (adding a subject changes no working context)."""
        row = thread_row((yield Stmt(self.sql.select_thread, (tid,))).one())
        self.access.check(principal, self.identity(tid, row), Access.WRITE, vote="run")
        tenant = row.tenant if row is not None else (principal.tenant if principal else None)
        yield from self._subjects_op(tid, tenant, subjects)

    def add_subjects(self, thread_id: str, principal: Principal | None,
                     subjects: Sequence[str]) -> None:
        """Record people the thread holds personal data about (see ``steward.add_subjects``)."""
        self.driver.run(self._add_subjects_op(str_id(thread_id, "thread_id"), principal,
                                              subjects_of(subjects)), write=True)

    async def aadd_subjects(self, thread_id: str, principal: Principal | None,
                            subjects: Sequence[str]) -> None:
        await self.driver.arun(self._add_subjects_op(str_id(thread_id, "thread_id"), principal,
                                                     subjects_of(subjects)), write=True)

    def release_op(self, tid: str, holder: str) -> Op[int]:
        """Give the lease back; returns 1 when ``holder`` still held it (the row is locked)."""
        released: int = (yield Stmt(self.sql.release_lease, (time.time(), tid, holder))).rowcount
        return released

    def renew_op(self, held: Sequence[tuple[str, str]]) -> Op[_Ids]:
        lost = []
        for tid, holder in held:
            res = yield Stmt(self.sql.renew_lease, (time.time() + self.lease_ttl, tid, holder))
            if res.rowcount == 0:
                lost.append(tid)
        return lost

    def hold(self, tid: str, holder: str) -> None:
        """A run of this process took the thread's lease: fence its writes and renew it."""
        self.leases[tid] = holder
        self._ensure_heartbeat()

    def let_go(self, tid: str, holder: str) -> None:
        """A run of this process is giving the lease back."""
        self.drop_view(tid)
        if self.leases.get(tid) == holder:
            del self.leases[tid]

    def renew_leases(self) -> _Ids:
        """Extend every lease this process holds; returns the threads whose lease was lost.
        Flushed only when a run here has steps not yet on disk (they go with it, so an "async"
        run's steps are on disk within a renewal period); otherwise not: after an OS crash
        the process holding the leases is gone anyway."""
        held = list(self.leases.items())
        if not held:
            return []
        with self.flushing() as durable:
            return self.driver.run(self.renew_op(held), write=True, durable=durable)

    def unflushed(self, *tids: str) -> None:
        """A run of this process committed a write of these threads without flushing it."""
        with self._unflushed_lock:
            self._unflushed.update(tids)

    @contextlib.contextmanager
    def flushing(self, tid: str | None = None) -> Iterator[bool]:
        """Whether the caller's commit must be flushed, for the steps waiting (of ``tid``, or
        of all threads): taken for it before it commits (a write committed meanwhile stays
        due, or is flushed by it), given back if it fails."""
        due = self.flush_due(tid)
        try:
            yield bool(due)
        except BaseException:
            self.unflushed(*due)
            raise

    def flush_due(self, tid: str | None = None) -> set[str]:
        """The threads (of ``tid``, or all) whose commits wait for a flush, taken."""
        with self._unflushed_lock:
            if tid is None:
                due, self._unflushed = self._unflushed, set()
                return due
            if tid not in self._unflushed:
                return set()
            self._unflushed.discard(tid)
            return {tid}

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is not None and self._heartbeat.is_alive():
            return
        self._heartbeat = threading.Thread(target=self._beat, name="steward-lease-heartbeat",
                                           daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        # Renew at a third of the TTL: a live process keeps its leases through long nodes, a
        # killed one stops renewing and its leases expire within lease_ttl.
        while not self._stop.wait(self.lease_ttl / 3):
            try:
                self.renew_leases()
            except Exception:
                continue

    def close(self) -> None:
        self._stop.set()

    def _threads_op(self, principal: Principal | None, thread_id: str | None,
                    status: str | None, limit: int | None) -> Op[_Dicts]:
        if status is not None and status not in STATUSES:
            raise ConfigError(f"unknown status {status!r}: a thread is one of "
                              f"{', '.join(STATUSES)}.")
        arms: list[tuple[list[str], _Params]] = []  # each an indexed look-up; their union
        if thread_id is not None:
            yield from self.authorize_op(thread_id, principal, Access.READ)
            arms.append((["thread_id = ?"], [thread_id]))
        elif principal is None:
            arms.append((["tenant IS NULL"], []))
        elif (self.access.level(principal) or 0) >= Access.READ:
            arms.append((["tenant = ?"], [principal.tenant]))  # (tenant, created_at)
        else:  # its own threads, (tenant, owner, created_at), and those within its reach
            arms.append((["tenant = ?", "owner = ?"], [principal.tenant, principal.id]))
            arms.append((["resumed_by = ?", "tenant = ?"], [principal.id, principal.tenant]))
            if principal.roles and status in (None, "interrupted"):
                arms.append((["tenant = ?", "status = 'interrupted'",
                              self.sql.waits_on_roles(len(principal.roles))],
                             [principal.tenant, *sorted(principal.roles)]))
        params: _Params = []
        selects = []
        stored = "running" if status == "stalled" else status
        for where, values in arms:
            if stored is not None:
                where, values = [*where, "status = ?"], [*values, stored]
            selects.append(f"{self.sql.thread_info} WHERE {' AND '.join(where)}")
            params += values
        sql = " UNION ".join(selects) + " ORDER BY created_at DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit_of(limit))
        rows = [InfoRow._make(r) for r in (yield Stmt(sql, params)).rows]
        stalled = yield from self.stalled_op(rows)
        if status in ("running", "stalled"):
            rows = [r for r in rows if (r.thread_id in stalled) == (status == "stalled")]
        subjects: dict[str, list[str]] = {row.thread_id: [] for row in rows}
        if rows:
            found = (yield Stmt("SELECT thread_id, subject FROM steward_subjects WHERE thread_id "
                                f"IN ({', '.join('?' for _ in rows)}) ORDER BY subject",
                                [row.thread_id for row in rows])).rows
            for tid, subject in found:
                subjects[tid].append(subject)
        return [{**self._thread_dict(row, row.thread_id in stalled),
                 "subjects": subjects[row.thread_id]} for row in rows]

    def stalled_op(self, rows: Sequence[InfoRow]) -> Op[set[str]]:
        """The running threads whose run is gone: its lease ran out, or its holder's process
        is known dead (``holder_gone_op``)."""
        now, stalled, sessions = time.time(), set(), {}
        for row in rows:
            if row.status != "running":
                continue
            if row.lease_expires_at is None or row.lease_expires_at <= now:
                stalled.add(row.thread_id)
            elif row.lease_holder and row.lease_holder.startswith("pg:"):
                sessions[row.thread_id] = row.lease_holder
            elif row.lease_holder and local_alive(row.lease_holder) is False:
                stalled.add(row.thread_id)
        if sessions and self.driver.dialect == "postgres":
            live = {r[0] for r in (yield Stmt(PG_SESSIONS_ALIVE,
                                              (sorted(set(sessions.values())),))).rows}
            stalled |= {tid for tid, token in sessions.items() if token not in live}
        return stalled

    @staticmethod
    def _thread_dict(row: InfoRow, stalled: bool) -> dict[str, Any]:
        return {"thread_id": row.thread_id, "tenant": row.tenant, "owner": row.owner,
                "status": "stalled" if stalled else row.status,
                "waiting_on": load_json(row.waiting_on) or [], "created_at": row.created_at,
                "updated_at": row.updated_at, "expires_at": row.expires_at,
                "leased": row.lease_owner is not None and not stalled
                and (row.lease_expires_at or 0) > time.time()}

    def info_op(self, tid: str, principal: Principal | None) -> Op[dict[str, Any] | None]:
        """The identity row of a thread (tenant, owner, status, ...), under the access rule."""
        rows = yield from self._threads_op(principal, tid, None, None)
        return rows[0] if rows else None

    def list_threads(self, principal: Principal | None, *, status: str | None = None,
                     limit: int | None = 100) -> _Dicts:
        """The threads ``principal`` may read, newest first.

        A principal sees its tenant's threads it owns, or all of them with a role granted
        ``read``; without a principal only unbound threads are listed. ``status`` is one of
        ``idle``, ``running``, ``interrupted`` (waiting, e.g. on an approval), ``stalled`` (a
        run that died mid-way: ``rt.resume`` continues it) or ``erased``."""
        return self.driver.run(self._threads_op(principal, None, status, limit), write=False)

    async def alist_threads(self, principal: Principal | None, *, status: str | None = None,
                            limit: int | None = 100) -> _Dicts:
        return await self.driver.arun(self._threads_op(principal, None, status, limit),
                                      write=False)
