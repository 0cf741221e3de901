"""The saver's writes, as operations: a checkpoint (``put_op``) and a task's writes
(``put_writes_op``), each claiming or guarding its thread's row, with the held task writes
(``riding``) and the participants' rows (the audit events) in the same transaction; the twin
of ``reading``.

A write to a thread this process knows goes out as one guarded statement on PostgreSQL
(``alone``: no BEGIN, no COMMIT, one round trip) and checks the row under the write lock on
SQLite (``Threads.guard_op``); anything else claims the row the careful way
(``Threads.claim_op``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.serde.types import INTERRUPT, RESUME

from steward.checkpointers.configs import interrupts, target, ttl_of
from steward.checkpointers.encoding import Encoder, inline_value
from steward.checkpointers.participants import Joined, WriteParticipant
from steward.checkpointers.riding import Taken
from steward.checkpointers.rows import ThreadRow, WriteCtx
from steward.checkpointers.sql import rows_json
from steward.identity import Principal, Vote, principal_from_config
from steward.storage.codec import Codec
from steward.storage.ops import Op, Result, StaleView, Stmt
from steward.storage.places import at_write

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver

__all__ = ["NULL_TASK_ID", "alone", "put_op", "put_writes_op"]

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"  # LangGraph's task of no task

_Joining = list[WriteParticipant]
_Joined = list[Joined]


def put_op(
    saver: StewardSaver,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
    ctx: WriteCtx | None = None,
) -> Op[RunnableConfig]:
    tid, ns, parent = target(config)
    principal = principal_from_config(config)
    done: RunnableConfig = {"configurable": {"thread_id": tid, "checkpoint_ns": ns,
                                             "checkpoint_id": checkpoint["id"]}}
    values = checkpoint.get("channel_values") or {}
    inline = {ch: v for ch, v in values.items() if inline_value(v)}
    changed = [(ch, str(v)) for ch, v in new_versions.items()
               if ch in values and ch not in inline]
    fast = saver.threads.fast_view(tid, principal, at=(ns, checkpoint["id"]), ctx=ctx)
    # The guard that trusts the cached row trusts the thread's cached data key with it (a key
    # only goes with a change of its thread's row); a key not cached takes the careful way.
    codec = saver.codec.thread(tid) if fast is not None else None
    if codec is None:
        fast = None
    taken = ctx.taken if ctx is not None else []
    joining, joined = _join(saver, tid, checkpoint["id"], fast if saver._pg else None, taken)
    if fast is not None and joined is not None:
        # A known thread whose row this write leaves alone: the whole write is one
        # statement, guarded (see claim_op), on its own: one round trip, no BEGIN/COMMIT.
        encoder = saver._encoder(codec)
        planned = [encoder.plan_blob(tid, ns, ch, v, values[ch], fast.created_at, ctx)
                   for ch, v in changed]
        rows = [row for row, _ in planned]
        bases = [base for _, base in planned if base is not None]
        ctes = "".join(j.cte for j in joined)
        stored = (tid, ns, rows_json([r[2:] for r in rows], 3)) if rows else ()
        yield from alone(
            saver.sql.put_alone(tid in saver.threads.leases, ctes, blobs=bool(rows),
                               bases=bool(bases)),
            (*stored, *encoder.checkpoint_row(config, checkpoint, inline, metadata,
                                              principal, tid, ns, parent,
                                              saver.threads.leases.get(tid))),
            _guard_params(saver, tid, fast, ns, bases), joined)
        return done
    # Only the checkpoints a run makes as it goes may come from an approver's reach; new
    # input, update_state and forks need access of one's own.
    vote: Vote | None = "run" if (metadata or {}).get("source") == "loop" else None
    trusted = None if saver._pg else fast
    thread, codec = yield from _claimed(saver, tid, principal, config, trusted, codec, ctx,
                                        at=(ns, checkpoint["id"]), vote=vote)
    yield from saver._riding.write_op(tid, taken)
    for participant in joining:
        yield from participant.write_op(tid, checkpoint["id"], thread)
    encoder = saver._encoder(codec)
    blobs = []
    for channel, version in changed:
        blob_row = yield from _blob_row(saver, encoder, tid, ns, channel, version,
                                        values[channel], thread.created_at, ctx)
        blobs.append(blob_row)
    if blobs:
        yield Stmt(saver.sql.insert_blobs, blobs, many=True, wait=False)
    yield Stmt(saver.sql.upsert_checkpoint,
               encoder.checkpoint_row(config, checkpoint, inline, metadata, principal, tid, ns,
                                      parent, saver.threads.leases.get(tid)),
               wait=False)
    return done


def _claimed(saver: StewardSaver, tid: str, principal: Principal | None,
             config: RunnableConfig, trusted: ThreadRow | None, codec: Codec | None,
             ctx: WriteCtx | None, *, at: tuple[str, str],
             interrupts: list[dict[str, Any]] | None = None,
             vote: Vote | None = None) -> Op[tuple[ThreadRow, Codec]]:
    """The careful way's thread row and codec: the row this process trusts (SQLite, checked
    under the write lock, with the cached key), or the row claimed with the thread's data key
    read in the same round trip (made, if the thread has none yet)."""
    if trusted is not None and codec is not None:
        yield from saver.threads.guard_op(tid, trusted)
        return trusted, codec
    key = saver.codec.thread_key_stmt(tid)
    found: list[Result] = []
    row = yield from saver.threads.claim_op(
        tid, principal, ttl=ttl_of(config), at=at, ctx=ctx, interrupts=interrupts, vote=vote,
        also=(key,) if key is not None else (), found=found)
    codec = yield from saver.codec.thread_op(tid, row.tenant, create=True,
                                             found=found[0] if found else None,
                                             made=ctx.keys if ctx is not None else None)
    return row, codec

def _join(saver: StewardSaver, tid: str, checkpoint_id: str, fast: ThreadRow | None,
          taken: Taken) -> tuple[_Joining, _Joined | None]:
    """The participants with rows for this write, and, when it may go out as one
    statement, their parts of it (None: one of them needs the careful way), the held task
    writes of the thread's run first (noted in ``taken``)."""
    joining = [p for p in saver.participants if p.joins(tid)]
    if fast is None:
        return joining, None
    riding = saver._riding.joined(tid, taken)
    joined: _Joined = [riding] if riding is not None else []
    for participant in joining:
        part = participant.joined(tid, checkpoint_id, fast.tenant)
        if part is None:
            for done in joined:
                done.unwritten()
            saver._riding.give_back(taken)  # the careful way takes them again
            return joining, None
        joined.append(part)
    return joining, joined

def alone(sql: str, params: tuple[Any, ...], guard: tuple[Any, ...],
           joined: Sequence[Joined]) -> Op[None]:
    """Send a one-statement write (Postgres): the guard's parameters, then the joined
    participants' (their CTEs follow the guard's), then the write's."""
    extra = tuple(p for j in joined for p in j.params)
    stale = frozenset(j.stale_key for j in joined if j.stale_key)
    try:
        yield Stmt(sql, (*guard, *extra, *params), wait=False, alone=True, stale_keys=stale)
    except BaseException:
        for j in joined:
            j.unwritten()  # not written: the rows wait for the next write
        raise
    for j in joined:
        j.written()

def _guard_params(saver: StewardSaver, tid: str, row: ThreadRow, ns: str,
                  bases: Sequence[tuple[str, str]]) -> tuple[Any, ...]:
    """Parameters of ``Sql._guarded``: the cached row's revision and incarnation, the
    fence, and the delta bases that must exist."""
    holder = saver.threads.leases.get(tid)
    return saver.sql.guarded_params(tid, ns, row.rev, row.created_at,
                                   holder if holder is not None else time.time(), bases)

def _blob_row(saver: StewardSaver, encoder: Encoder, tid: str, ns: str, channel: str,
              version: str, value: Any, incarnation: float,
              ctx: WriteCtx | None) -> Op[tuple[Any, ...]]:
    row, base = encoder.plan_blob(tid, ns, channel, version, value, incarnation, ctx)
    if base is not None:
        where = (tid, ns, *base)
        if saver.driver.optimistic:
            yield Stmt(saver.sql.assert_base, where, wait=False)
        elif not (yield Stmt(saver.sql.base_exists, where)).rows[0][0]:
            raise StaleView  # pruned by another process: store the value whole instead
    return row

def put_writes_op(
    saver: StewardSaver,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
    ctx: WriteCtx | None = None,
) -> Op[None]:
    tid, ns, cid = target(config, need_id=True)
    assert cid is not None
    if not writes:
        return
    principal = principal_from_config(config)
    # A task's writes go on with its run; writes of no task are a resume (the approver's
    # vote) or a command's update (access of one's own).
    vote: Vote | None = "run" if task_id != NULL_TASK_ID else (
        "resume" if all(channel == RESUME for channel, _ in writes) else None)
    screen = saver.write_filter.screen(task_id, writes) if saver.write_filter else None
    if screen is not None and not screen.store:
        # Nothing of the task is stored, not even its error; the participants' rows are.
        row = yield from saver.threads.claim_op(tid, principal, ttl=ttl_of(config),
                                               at=(ns, cid), ctx=ctx, vote=vote)
        yield from saver._riding.write_op(tid, ctx.taken if ctx is not None else [])
        for participant in saver.participants:
            if participant.joins(tid):
                yield from participant.write_op(tid, cid, row)
        screen.done()
        if screen.clear_resume:
            yield Stmt(saver.sql.delete_null_resume, (tid, ns, cid, NULL_TASK_ID, RESUME),
                       wait=False)
        return
    groups = [interrupts(v, task_id) for ch, v in writes if ch == INTERRUPT]
    waits = [i for g in groups for i in g] if groups else None
    special = all(channel in WRITES_IDX_MAP for channel, _ in writes)

    def sealed(codec: Codec) -> list[tuple[Any, ...]]:
        """(idx, channel, type, blob, the value) of each write."""
        rows = []
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            rows.append((idx, channel, *codec.dump(saver.serde, value,
                                                   at_write(tid, ns, cid, task_id, idx)),
                         value))
        return rows

    fast = None if screen is not None else saver.threads.fast_view(
        tid, principal, at=(ns, cid), interrupts=waits, ctx=ctx)
    codec = saver.codec.thread(tid) if fast is not None else None  # as in put_op
    if codec is None:
        fast = None
    taken = ctx.taken if ctx is not None else []
    joining, joined = _join(saver, tid, cid, fast if saver._pg else None, taken)
    if fast is not None and joined is not None and codec is not None:  # one statement
        rows = sealed(codec)
        yield from alone(
            saver.sql.writes_alone(tid in saver.threads.leases, special,
                                  "".join(j.cte for j in joined)),
            (tid, ns, cid, task_id, task_path, rows_json([r[:4] for r in rows], 3)),
            _guard_params(saver, tid, fast, ns, ()), joined)
        return
    trusted = None if saver._pg else fast
    row, codec = yield from _claimed(saver, tid, principal, config, trusted, codec, ctx,
                                     at=(ns, cid), interrupts=waits, vote=vote)
    rows = sealed(codec)
    yield from saver._riding.write_op(tid, taken)
    for participant in joining:
        yield from participant.write_op(tid, cid, row)
    if screen is not None:
        rows = [r for r in rows if screen.keep(r[1], r[4])]
        screen.done()
    if rows:
        yield Stmt(saver.sql.upsert_writes if special else saver.sql.insert_writes,
                   [(tid, ns, cid, task_id, *r[:4], task_path) for r in rows], many=True,
                   wait=False)
    if screen is not None and screen.clear_resume:
        yield Stmt(saver.sql.delete_null_resume, (tid, ns, cid, NULL_TASK_ID, RESUME),
                   wait=False)
