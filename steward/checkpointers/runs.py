"""What a run does with its thread: take the lease, and give it back at the end.

Taking the lease reads the thread's latest checkpoint in the same round trip, and the run's
first read (LangGraph's ``get_tuple``) is served from it (``Prefetches``): nobody else can
write the thread while the run holds its lease. On PostgreSQL a new thread's first lease is
one statement (``fresh_op``), and a run's end is one statement too (``release_alone_op``): the
lease given back with the run's held task writes (``riding``), its last audit events and the
chain's head; either falls back to the careful way (``acquire_op``, ``release_op``) when it
cannot be one statement. The sync and async saver methods drive the same ``*_steps``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from steward.checkpointers import writing
from steward.checkpointers.deltas import Key, Known
from steward.checkpointers.riding import Taken
from steward.checkpointers.rows import ThreadRow
from steward.errors import ThreadAccessDenied
from steward.identity import Access, Principal, ThreadIdentity, Vote, principal_from_config
from steward.storage.codec import dump_json
from steward.storage.drivers import Driver
from steward.storage.ops import Op, Result, StaleView, Stmt

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver
    from steward.checkpointers.threads import Threads

__all__ = ["Prefetched", "Prefetches", "acquire_steps", "arun_steps", "release_steps",
           "run_steps"]

T = TypeVar("T")
# Operations run one after another, each in a write transaction of its own (not flushed, but
# for ``durable``: a lease is void once its process is gone); StaleView goes back into the
# steps.
Steps = Generator[Op[Any], Any, T]


def run_steps(driver: Driver, steps: Steps[T], *, durable: bool = False) -> T:
    result: Any = None
    error: StaleView | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            result, error = driver.run(op, write=True, durable=durable), None
        except StaleView as exc:
            result, error = None, exc


async def arun_steps(driver: Driver, steps: Steps[T], *, durable: bool = False) -> T:
    result: Any = None
    error: StaleView | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            result, error = await driver.arun(op, write=True, durable=durable), None
        except StaleView as exc:
            result, error = None, exc


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What taking a thread's lease read: its latest root checkpoint (for the run's first
    ``get_tuple``) and its row as the lease left it."""

    holder: str
    principal: Principal | None
    latest: CheckpointTuple | None
    row: ThreadRow


class Prefetches:
    """The latest checkpoint each run of this process read with its lease, until its first
    read takes it."""

    def __init__(self, leases: dict[str, str]) -> None:
        self._leases = leases
        self._found: dict[str, Prefetched] = {}
        self._lock = threading.Lock()

    def put(self, tid: str, found: Prefetched) -> None:
        with self._lock:
            self._found[tid] = found

    def drop(self, tid: str) -> None:
        with self._lock:
            self._found.pop(tid, None)

    def first_read(self, config: RunnableConfig) -> Prefetched | None:
        """The latest checkpoint read with the lease, if this is the run's first read of it
        (the latest root checkpoint, by the run's own principal)."""
        conf = config.get("configurable") or {}
        if conf.get("checkpoint_id") or conf.get("checkpoint_ns"):
            return None
        tid = conf.get("thread_id")
        with self._lock:
            found = self._found.get(str(tid)) if tid is not None else None
            if found is None or self._leases.get(str(tid)) != found.holder \
                    or principal_from_config(config) != found.principal:
                return None
            del self._found[str(tid)]
        return found


# -- taking the lease ------------------------------------------------------------------------


def acquire_steps(saver: StewardSaver, tid: str, holder: str, principal: Principal | None,
                  ttl: float | None, subjects: Sequence[str], vote: Vote | None,
                  process: str) -> Steps[Prefetched]:
    """A new thread's lease in one statement where it can be, else the careful way."""
    if saver.driver.optimistic and saver.threads.view(tid) is None:
        row = yield fresh_op(saver.threads, tid, holder, principal, ttl, subjects, vote,
                             process)
        if row is not None:  # a new thread, created with the lease: nothing to read
            for participant in saver.participants:
                yield participant.run_started_op(tid, row)
            return Prefetched(holder, principal, None, row)
    found: Prefetched = yield acquire_op(saver, tid, holder, principal, ttl, subjects, vote,
                                         process)
    return found


def fresh_op(threads: Threads, tid: str, holder: str, principal: Principal | None,
             ttl: float | None, subjects: Sequence[str], vote: Vote | None,
             process: str | None) -> Op[ThreadRow | None]:
    """Take the lease of a thread that does not exist yet in one statement (Postgres):
    create it bound to ``principal`` with the lease, as ``acquire_op`` would, and record
    its subjects; None (nothing changed) if the thread exists, or if the principal may
    not write a thread of its own: ``acquire_op`` then decides, the careful way."""
    now = time.time()
    ttl = ttl if ttl is not None else threads.default_ttl
    tenant = principal.tenant if principal else None
    owner = principal.id if principal else None
    try:
        reach = threads.access.check(principal, ThreadIdentity(tid, tenant, owner, frozenset(),
                                                               None), Access.WRITE, vote=vote)
    except ThreadAccessDenied:
        return None
    if reach:
        return None  # an approver's reach on a thread nobody owns yet: the careful way says
    # The row as the careful way leaves it: the inserted row, then the lease's changes.
    inserted = ThreadRow(tenant, owner, None, None, now + ttl if ttl else None, "idle", None,
                         None, 0, now, 0, None, None, None)
    _, _, row = threads._changes(inserted, principal, None, None, holder, holder, now, reach,
                                 process)
    run_as = dump_json(principal.to_dict()) if principal is not None else None
    found = (yield Stmt(threads.sql.fresh_lease, (
        tid, tenant, owner, now, now, row.expires_at, holder, row.lease_expires_at, process,
        row.status, run_as, row.rev, tid, tenant, now, dump_json(list(subjects))),
        alone=True)).one()
    return row if found is not None else None


def acquire_op(saver: StewardSaver, tid: str, holder: str, principal: Principal | None,
               ttl: float | None, subjects: Sequence[str], vote: Vote | None,
               process: str) -> Op[Prefetched]:
    """Take the lease and read the thread's latest checkpoint in the same round trip: the
    run's first read (LangGraph's ``get_tuple``) is then served from it (``Prefetches``),
    since nobody else can write the thread while the run holds its lease."""
    found: list[Result] = []
    key = saver.codec.thread_key_stmt(tid)  # with per-thread data keys, its key as well
    row = yield from saver.threads.acquire_op(
        tid, holder, principal, ttl, subjects, vote, process,
        also=(Stmt(saver.sql.select_latest, (tid, "")),
              Stmt(saver.sql.select_latest_writes, (tid, "", tid, "")),
              *((key,) if key is not None else ())), found=found)
    saver._riding.drop(tid)  # a run of this process that lost the thread left them
    for participant in saver.participants:
        yield from participant.run_started_op(tid, row)
    latest = found[0].one() if found else None
    tup, codec = None, saver.codec
    if key is not None:
        # The run's writes trust the cached key from here: nobody else may delete or erase
        # the thread while the run holds its lease.
        codec = yield from saver.codec.thread_op(tid, row.tenant, create=False, found=found[2])
    if latest is not None:
        learned: dict[Key, Known | None] = {}
        tup = yield from saver._decoder(codec).load_latest_op(latest, found[1], learned,
                                                              row.created_at)
        saver._lists.update(learned)
    return Prefetched(holder, principal, tup, row)


# -- giving it back ---------------------------------------------------------------------------


def release_steps(saver: StewardSaver, tid: str, holder: str,
                  view: ThreadRow | None) -> Steps[None]:
    """The run's end in one statement where it can be, else the careful way."""
    if saver.driver.optimistic:
        taken: Taken = []
        try:
            yield release_alone_op(saver, tid, holder, view.tenant if view else None, taken)
            return
        except StaleView:
            saver._riding.give_back(taken)
    yield release_op(saver, tid, holder, [])


def release_op(saver: StewardSaver, tid: str, holder: str, taken: Taken) -> Op[None]:
    if (yield from saver.threads.release_op(tid, holder)):
        # The run's held task writes go with the release (the run still held the lease).
        yield from saver._riding.write_op(tid, taken, holder)
        for participant in saver.participants:  # the run's last rows; the row is locked
            yield from participant.run_ended_op(tid)


def release_alone_op(saver: StewardSaver, tid: str, holder: str, tenant: str | None,
                     taken: Taken) -> Op[None]:
    """A run's end as one statement (Postgres), with its held task writes and what the
    participants write at a run's end; StaleView (the careful way) when one of them
    cannot join or the run lost the lease."""
    riding = saver._riding.joined(tid, taken, holder)
    joined = [riding] if riding is not None else []
    for participant in saver.participants:
        part = participant.ended(tid, tenant)
        if part is None:  # it needs the careful way
            for done in joined:
                done.unwritten()
            raise StaleView
        joined.append(part)
    sets = [(column, value) for part in joined for column, value in part.sets]
    yield from writing.alone(
        saver.sql.release_alone("".join(j.cte for j in joined), [c for c, _ in sets]),
        (time.time(), *(value for _, value in sets), tid, holder), (tid, holder), joined)
