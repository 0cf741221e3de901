"""The saver's reads, as operations: one checkpoint (``get_tuple``) and a listing (``list``),
each decided by the thread access rule before anything is decoded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from steward.checkpointers.configs import target
from steward.checkpointers.deltas import Key, Known
from steward.checkpointers.rows import thread_row
from steward.checkpointers.threads import Threads
from steward.errors import ConfigError
from steward.identity import Access, principal_from_config
from steward.storage.ops import Op, Stmt
from steward.storage.values import limit_of

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver

__all__ = ["get_tuple_op", "list_op"]


def get_tuple_op(saver: StewardSaver, config: RunnableConfig) -> Op[CheckpointTuple | None]:
    tid, ns, cid = target(config)
    principal = principal_from_config(config)
    # One round trip for the thread's identity, the checkpoint and (with per-thread data
    # keys) the thread's wrapped key; nothing is returned before the access rule has looked
    # at the identity.
    key = saver.codec.thread_key_stmt(tid)
    found, checkpoints, *keys = yield (
        Stmt(saver.sql.select_thread, (tid,)),
        Stmt(saver.sql.select_checkpoint, (tid, ns, cid)) if cid
        else Stmt(saver.sql.select_latest, (tid, ns)),
        *((key,) if key is not None else ()),
    )
    thread = thread_row(found.one())
    saver.threads.access.check(principal, Threads.identity(tid, thread), Access.READ)
    row = checkpoints.one()
    if row is None:
        return None
    codec = yield from saver.codec.thread_op(tid, None, create=False,
                                             found=keys[0] if keys else None)
    if thread is None:
        return (yield from saver._decoder(codec).load_tuple_op(row))
    learned: dict[Key, Known | None] = {}
    tup = yield from saver._decoder(codec).load_tuple_op(row, learned, thread.created_at)
    saver._lists.update(learned)  # a cache: safe to fill before the read commits
    return tup


def list_op(
    saver: StewardSaver,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> Op[list[CheckpointTuple]]:
    principal = principal_from_config(config)
    configurable = (config or {}).get("configurable") or {}
    sql, where = saver.sql.list_prefix, []
    params: list[Any] = []
    if "thread_id" in configurable:
        tid, ns, cid = target(config)
        yield from saver.threads.authorize_op(tid, principal, Access.READ)
        where.append("c.thread_id = ?")
        params.append(tid)
        if "checkpoint_ns" in configurable:
            where.append("c.checkpoint_ns = ?")
            params.append(ns)
        if cid:
            where.append("c.checkpoint_id = ?")
            params.append(cid)
    else:
        # No thread named: list only what the caller may see (never another tenant's).
        sql += " JOIN steward_threads t ON t.thread_id = c.thread_id"
        if principal is None:
            where.append("t.tenant IS NULL")
        elif (saver.threads.access.level(principal) or 0) >= Access.READ:
            where.append("t.tenant = ?")
            params.append(principal.tenant)
        else:
            where.append("t.tenant = ? AND t.owner = ?")
            params += [principal.tenant, principal.id]
    if filter is not None and not isinstance(filter, Mapping):
        raise ConfigError(f"list(filter=...) takes a dict of metadata values, got {filter!r}.")
    for key, value in (filter or {}).items():
        fragment, values = saver.sql.metadata_filter(key, value)
        where.append(fragment)
        params += values
    if before is not None:
        _, _, before_id = target(before)
        if before_id:
            where.append("c.checkpoint_id < ?")
            params.append(before_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY c.checkpoint_id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit_of(limit))
    rows = (yield Stmt(sql, params)).rows
    # With per-thread data keys, the listed threads' keys in one read.
    codecs = yield from saver.codec.threads_op(str(row[0]) for row in rows)
    decoders = {tid: saver._decoder(codecs[tid]) for tid in {str(row[0]) for row in rows}}
    # Every listed checkpoint's values and writes in one more round trip.
    checkpoints = [decoders[str(row[0])].decode(row) for row in rows]
    batches = [decoders[str(row[0])].tuple_stmts(row, cp)
               for row, cp in zip(rows, checkpoints, strict=True)]
    results = (yield tuple(stmt for batch in batches for stmt in batch)) if rows else []
    out, at = [], 0
    for row, cp, batch in zip(rows, checkpoints, batches, strict=True):
        out.append(decoders[str(row[0])].tuple_from(row, cp, results[at:at + len(batch)],
                                                    None, 0.0))
        at += len(batch)
    return out
