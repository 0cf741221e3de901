"""The saver's housekeeping, as operations: deleting a thread (with the rows the other parts
keep of it), deleting what given runs wrote, copying a thread (re-sealing encrypted payloads
for their new place), pruning to the latest checkpoints, and sweeping expired threads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from steward.errors import ConfigError
from steward.identity import Access, Principal
from steward.storage.codec import Codec, dump_json, load_json
from steward.storage.drivers import placeholders
from steward.storage.ops import Op, Stmt
from steward.storage.places import at_blob, at_checkpoint, at_write
from steward.storage.values import str_id

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver

__all__ = ["copy_thread_op", "delete_for_runs_op", "delete_rows", "delete_thread_op",
           "erase_context_op", "prune_op", "sweep_op"]


def delete_rows(saver: StewardSaver, tid: str) -> Op[None]:
    saver.threads.drop_view(tid)
    for table in saver._thread_tables:  # the other parts' rows of the thread first
        yield Stmt(f"DELETE FROM {table} WHERE thread_id = ?", (tid,))
    yield from saver.codec.forget_threads([tid])  # its data key, if it has one
    for sql in saver.sql.delete_thread_rows:
        yield Stmt(sql, (tid,))
    yield Stmt(saver.sql.delete_thread, (tid,))


def delete_thread_op(saver: StewardSaver, thread_id: str, principal: Principal | None) -> Op[None]:
    tid = str_id(thread_id, "thread_id")
    row = yield from saver.threads.authorize_op(tid, principal, Access.ADMIN)
    if row is not None:
        yield from delete_rows(saver, tid)


def delete_for_runs_op(saver: StewardSaver, run_ids: Sequence[str],
                       principal: Principal | None) -> Op[None]:
    ids = [str_id(str(r), "run_id") for r in run_ids]
    if not ids:
        return
    marks = f"({placeholders(ids)})"
    threads = (yield Stmt(saver.sql.threads_of_runs + marks, ids)).rows
    for (tid,) in threads:
        yield from saver.threads.authorize_op(tid, principal, Access.ADMIN)
    yield Stmt(saver.sql.delete_writes_of_runs + marks + ")", ids)
    yield Stmt(saver.sql.delete_checkpoints_of_runs + marks, ids)
    for (tid,) in threads:
        yield Stmt(saver.sql.gc_blobs, (tid, tid, tid))


def copy_thread_op(saver: StewardSaver, source: str, target: str,
                   principal: Principal | None) -> Op[None]:
    src, dst = str_id(source, "source_thread_id"), str_id(target, "target_thread_id")
    row = yield from saver.threads.authorize_op(src, principal, Access.READ)
    if row is None:
        return
    claimed = yield from saver.threads.claim_op(dst, principal)
    if not saver.codec.sealed:
        for sql in saver.sql.copy_rows:
            yield Stmt(sql, (dst, src))
    else:
        # With per-thread data keys the copy is sealed under a key of its own.
        old = yield from saver.codec.thread_op(src, row.tenant, create=False)
        new = yield from saver.codec.thread_op(dst, claimed.tenant, create=True)
        yield from reseal_copy(saver, src, dst, old, new)
    yield Stmt(saver.sql.copy_subjects, (dst, src), wait=False)  # the copy is about them too


def reseal_copy(saver: StewardSaver, src: str, dst: str, old: Codec, new: Codec) -> Op[None]:
    """Copy an encrypted thread: every ciphertext is bound to its thread (and, with per-thread
    data keys, sealed with its thread's key), so re-seal each from ``old`` into ``new``."""
    where = f"a payload of thread {src!r}"

    def move(type_: str, blob: bytes, where: str, at: tuple[str, ...],
             to: tuple[str, ...]) -> tuple[str, bytes]:
        return old.move(type_, blob, where, at, to, into=new)

    rows = (yield Stmt(saver.sql.copy_select[0], (src,))).rows
    if rows:
        yield Stmt(saver.sql.upsert_checkpoint, [
            (dst, ns, cid, parent, run_id,
             *move(t, b, where, at_checkpoint(src, ns, cid), at_checkpoint(dst, ns, cid)),
             dump_json(load_json(md)), dump_json(load_json(versions)))
            for ns, cid, parent, run_id, t, b, md, versions in rows], many=True)
    rows = (yield Stmt(saver.sql.copy_select[1], (src,))).rows
    if rows:
        yield Stmt(saver.sql.insert_blobs, [
            (dst, ns, ch, v, *move(t, b, where, at_blob(src, ns, ch, v),
                                   at_blob(dst, ns, ch, v)), base, keep, depth)
            for ns, ch, v, t, b, base, keep, depth in rows], many=True)
    rows = (yield Stmt(saver.sql.copy_select[2], (src,))).rows
    if rows:
        yield Stmt(saver.sql.insert_writes, [
            (dst, ns, cid, task, idx, ch,
             *move(t, b, where, at_write(src, ns, cid, task, idx),
                   at_write(dst, ns, cid, task, idx)), path)
            for ns, cid, task, idx, ch, t, b, path in rows], many=True)


def prune_op(saver: StewardSaver, thread_ids: Sequence[str], strategy: str,
             principal: Principal | None) -> Op[None]:
    if strategy not in ("keep_latest", "delete"):
        raise ConfigError(
            f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'.")
    for thread_id in thread_ids:
        tid = str_id(thread_id, "thread_id")
        row = yield from saver.threads.authorize_op(tid, principal, Access.ADMIN)
        if row is None:
            continue
        if strategy == "delete":
            yield from delete_rows(saver, tid)
        else:
            yield Stmt(saver.sql.prune_writes, (tid, tid))
            yield Stmt(saver.sql.prune_checkpoints, (tid, tid))
            codec = yield from saver.codec.thread_op(tid, row.tenant, create=False)
            yield from saver._decoder(codec).compact_op(tid)
            yield Stmt(saver.sql.gc_blobs, (tid, tid, tid))


def sweep_op(saver: StewardSaver) -> Op[list[str]]:
    now = time.time()
    expired = [r[0] for r in (yield Stmt(saver.sql.expired_threads, (now, now))).rows]
    for tid in expired:
        yield from delete_rows(saver, tid)
    return expired


def erase_context_op(saver: StewardSaver, ids: Sequence[str]) -> Op[int]:
    """Delete the working context of threads (checkpoints, values, pending writes), keeping
    their rows; returns how many checkpoints went."""
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    count: int = (yield Stmt(f"DELETE FROM steward_checkpoints WHERE thread_id IN ({marks})",
                             tuple(ids))).rowcount
    for table in ("steward_blobs", "steward_writes"):
        yield Stmt(f"DELETE FROM {table} WHERE thread_id IN ({marks})", tuple(ids), wait=False)
    # With per-thread data keys, their keys go too (crypto-shredding): a copy of what was
    # sealed with them -- a leftover row, a backup of the data tables -- can no longer be read.
    yield from saver.codec.forget_threads(ids)
    return max(count, 0)  # the caller forgets the cached rows once this committed
