"""Steward's checkpoint saver: one implementation, two databases, sync and async.

Each public method builds an operation (a generator of SQL statements, see ``_ops``) and hands
it to the driver, which runs it in one transaction. The thread access rule, lease fencing,
serialization and encryption all happen inside those operations, so a rejected request rolls
back and leaves the database exactly as it was.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import INTERRUPT

from steward.checkpointers._codec import Codec, dump_json, load_json
from steward.checkpointers._crypto import Cipher
from steward.checkpointers._drivers import Driver, placeholders
from steward.checkpointers._ops import Op, Stmt
from steward.checkpointers._schema import setup_op
from steward.checkpointers._sql import Sql
from steward.errors import ConfigError, ThreadBusy
from steward.identity import Access, AccessRule, Principal, ThreadIdentity, principal_from_config

__all__ = ["StewardSaver"]

Strategy = Literal["keep_latest", "delete"]
# Aliases: inside the class, ``list`` names the saver's method.
_Ids = list[str]
_Tuples = list[CheckpointTuple]
_Params = list[Any]
_Rows = list[tuple[Any, ...]]
_Dicts = list[dict[str, Any]]
_SYSTEM = object()  # the runtime itself (retention sweeps): above the access rule


def _str_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{name} must be a non-empty string, got {value!r}: convert it with str() before "
            "putting it in config['configurable']."
        )
    return value


def _target(config: RunnableConfig | None, *, need_id: bool = False) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id) of a config, validated."""
    configurable = (config or {}).get("configurable")
    if not isinstance(configurable, Mapping) or "thread_id" not in configurable:
        raise ConfigError(
            "config has no thread_id: pass {'configurable': {'thread_id': '...'}} or build it "
            "with rt.config(thread_id, principal)."
        )
    tid = _str_id(configurable["thread_id"], "thread_id")
    ns = configurable.get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise ConfigError(f"checkpoint_ns must be a string, got {ns!r}.")
    cid = configurable.get("checkpoint_id")
    if cid is not None:
        cid = _str_id(cid, "checkpoint_id")
    elif need_id:
        raise ConfigError("config has no checkpoint_id: writes belong to a stored checkpoint.")
    return tid, ns, cid


# Where a payload belongs; encryption binds each ciphertext to it (see _crypto.Cipher).
def _at_checkpoint(tid: str, ns: str, cid: str) -> tuple[str, ...]:
    return ("checkpoint", tid, ns, cid)


def _at_blob(tid: str, ns: str, channel: str, version: str) -> tuple[str, ...]:
    return ("blob", tid, ns, channel, version)


def _at_write(tid: str, ns: str, cid: str, task_id: str, idx: int) -> tuple[str, ...]:
    return ("write", tid, ns, cid, task_id, str(idx))


def _ttl_of(config: RunnableConfig | None) -> float | None:
    options = ((config or {}).get("configurable") or {}).get("steward") or {}
    ttl = options.get("ttl") if isinstance(options, Mapping) else None
    return float(ttl) if ttl is not None else None


def _interrupts(value: Any) -> list[dict[str, Any]]:
    """A JSON summary of what a thread waits on, from an ``__interrupt__`` write."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        payload = getattr(item, "value", item)
        kind = payload.get("type") if isinstance(payload, Mapping) else None
        out.append({"id": getattr(item, "id", None),
                    "type": kind if isinstance(kind, str) else None})
    return out


class StewardSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that knows who owns each thread.

    Use :func:`steward.open` rather than constructing it directly.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        serde: SerializerProtocol | None = None,
        cipher: Cipher | None = None,
        access: AccessRule | None = None,
        default_ttl: float | None = None,
        lease_ttl: float = 30.0,
    ) -> None:
        super().__init__(serde=serde)
        if lease_ttl <= 0:
            raise ConfigError(f"lease_ttl must be a positive number of seconds, got {lease_ttl!r}.")
        if default_ttl is not None and default_ttl <= 0:
            raise ConfigError(f"default_ttl must be positive seconds or None, got {default_ttl!r}.")
        self.driver = driver
        self.sql = Sql(driver.dialect)
        self.codec = Codec(cipher)
        self.access = access or AccessRule()
        self.default_ttl = default_ttl
        self.lease_ttl = lease_ttl
        # Leases held by runs in this process: thread_id -> holder. Shared by with_allowlist
        # copies (a shallow copy shares the dict), so every copy fences the same way.
        self.leases: dict[str, str] = {}
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    # -- setup ---------------------------------------------------------------------------------

    def _setup_op(self) -> Op[int]:
        cipher = self.codec.cipher
        return setup_op(self.driver.dialect, self.driver.url,
                        cipher.fingerprint if cipher else None)

    def setup(self) -> None:
        """Create or migrate the schema; idempotent and safe from several processes at once."""
        self.driver.run(self._setup_op(), write=True)

    async def asetup(self) -> None:
        await self.driver.arun(self._setup_op(), write=True)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        # A random suffix keeps two forks of one parent from colliding on a blob's version.
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{secrets.randbelow(10**16):016}"

    # -- identity and leases -------------------------------------------------------------------

    def _thread(self, tid: str, row: tuple[Any, ...] | None) -> ThreadIdentity | None:
        return ThreadIdentity(tid, row[0], row[1]) if row else None

    def _check_lease(self, tid: str, row: tuple[Any, ...], now: float) -> None:
        lease_owner, lease_expires = row[2], row[3]
        mine = self.leases.get(tid)
        if mine is not None:
            if lease_owner != mine:
                raise ThreadBusy(
                    f"this run lost its lease on thread {tid!r} (it expired and another run took "
                    "the thread over); its writes are refused. Re-run from the thread's latest "
                    "state, and raise lease_ttl if runs stall longer than it.",
                    thread_id=tid,
                )
            return
        if lease_owner is not None and lease_expires is not None and lease_expires > now:
            raise ThreadBusy(
                f"thread {tid!r} is being run by another run right now: retry when it has "
                f"finished (its lease expires in {lease_expires - now:.1f}s unless renewed).",
                thread_id=tid, expires_in=lease_expires - now,
            )

    def _authorize(self, tid: str, principal: Any, need: Access) -> Op[tuple[Any, ...] | None]:
        """Lock and check an existing thread (no binding); returns its row or None."""
        sql = self.sql.select_thread_for_update if need > Access.READ else self.sql.select_thread
        row = (yield Stmt(sql, (tid,))).one()
        if principal is not _SYSTEM:
            self.access.check(cast("Principal | None", principal), self._thread(tid, row), need)
            if row is not None and need > Access.READ:
                self._check_lease(tid, row, time.time())
        return row

    def _claim(
        self,
        tid: str,
        principal: Principal | None,
        *,
        ttl: float | None = None,
        at: tuple[str, str] | None = None,
        interrupts: list[dict[str, Any]] | None = None,
        lease: str | None = None,
    ) -> Op[None]:
        """Authorize a write: create and bind the thread on first write, check access and the
        lease, and record on the thread row what the write changes (``at`` is the written
        checkpoint's (ns, id); ``interrupts`` what a write makes the thread wait on)."""
        now = time.time()
        ttl = ttl if ttl is not None else self.default_ttl
        yield Stmt(self.sql.insert_thread, (
            tid, principal.tenant if principal else None, principal.id if principal else None,
            now, now, now + ttl if ttl else None,
        ))
        row = (yield Stmt(self.sql.select_thread_for_update, (tid,))).one()
        assert row is not None
        self.access.check(principal, self._thread(tid, row), Access.WRITE)
        holder = row[2] if row[3] is not None and row[3] > now else None
        if lease is None:
            self._check_lease(tid, row, now)
        elif holder not in (None, lease):
            raise ThreadBusy(
                f"thread {tid!r} is being run by another run right now: retry when it has "
                f"finished (its lease expires in {row[3] - now:.1f}s unless renewed).",
                thread_id=tid, expires_in=row[3] - now,
            )
        else:
            holder = lease
        sets: list[str] = ["updated_at = ?"]
        params: list[Any] = [now]
        if row[0] is None and principal is not None:  # the first write by a principal binds
            sets += ["tenant = ?", "owner = ?"]
            params += [principal.tenant, principal.id]
        waiting, waiting_at = load_json(row[6]), row[7]
        if interrupts is not None and at is not None:
            # Interrupts of one checkpoint add up (parallel tasks may each pause).
            waiting = (waiting if waiting_at == at[1] and waiting else []) + interrupts
            waiting_at = at[1]
        elif at is not None and at[0] == "" and waiting_at is not None and waiting_at < at[1]:
            # A newer root checkpoint means the thread moved past what it waited on. (With
            # durability="async" the interrupt's checkpoint may be written after its writes,
            # hence the comparison rather than clearing on every put.)
            waiting, waiting_at = None, None
        sets += [f"waiting_on = {self.sql.json_param}", "waiting_at = ?", "status = ?"]
        params += [dump_json(waiting) if waiting else None, waiting_at,
                   "interrupted" if waiting else "running" if holder else "idle"]
        if lease is not None:
            yield Stmt(self.sql.acquire_lease, (lease, now + self.lease_ttl, now, tid))
        yield Stmt(f"UPDATE steward_threads SET {', '.join(sets)} WHERE thread_id = ?",
                   (*params, tid))

    def _acquire_op(self, tid: str, holder: str, principal: Principal | None,
                    ttl: float | None) -> Op[None]:
        yield from self._claim(tid, principal, ttl=ttl, lease=holder)

    def _release_op(self, tid: str, holder: str) -> Op[int]:
        return (yield Stmt(self.sql.release_lease, (tid, holder))).rowcount

    def _renew_op(self, held: Sequence[tuple[str, str]]) -> Op[_Ids]:
        lost = []
        for tid, holder in held:
            res = yield Stmt(self.sql.renew_lease, (time.time() + self.lease_ttl, tid, holder))
            if res.rowcount == 0:
                lost.append(tid)
        return lost

    def acquire_lease(self, thread_id: str, holder: str, principal: Principal | None,
                      ttl: float | None = None) -> None:
        """Make ``holder`` the only run allowed to write the thread, or raise ThreadBusy.

        ``ttl`` is the thread's time to live in case this creates it."""
        self.driver.run(self._acquire_op(thread_id, holder, principal, ttl), write=True)
        self.leases[thread_id] = holder
        self._ensure_heartbeat()

    async def aacquire_lease(self, thread_id: str, holder: str, principal: Principal | None,
                             ttl: float | None = None) -> None:
        await self.driver.arun(self._acquire_op(thread_id, holder, principal, ttl), write=True)
        self.leases[thread_id] = holder
        self._ensure_heartbeat()

    def release_lease(self, thread_id: str, holder: str) -> None:
        if self.leases.get(thread_id) == holder:
            del self.leases[thread_id]
        self.driver.run(self._release_op(thread_id, holder), write=True)

    async def arelease_lease(self, thread_id: str, holder: str) -> None:
        if self.leases.get(thread_id) == holder:
            del self.leases[thread_id]
        await self.driver.arun(self._release_op(thread_id, holder), write=True)

    def renew_leases(self) -> _Ids:
        """Extend every lease this process holds; returns the threads whose lease was lost."""
        held = list(self.leases.items())
        return self.driver.run(self._renew_op(held), write=True) if held else []

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

    # -- reading -------------------------------------------------------------------------------

    def _load_tuple(self, row: tuple[Any, ...]) -> Op[CheckpointTuple]:
        tid, ns, cid, parent, type_, blob, metadata, versions = row
        where = f"checkpoint {cid!r} of thread {tid!r}"
        checkpoint = cast(Checkpoint, self.codec.load(self.serde, type_, blob, where,
                                                      _at_checkpoint(tid, ns, cid)))
        versions = load_json(versions) or {}
        values: dict[str, Any] = {}
        if versions:
            params: list[Any] = [tid, ns]
            for channel, version in versions.items():
                params += [channel, version]
            blobs = yield Stmt(self.sql.select_blobs(len(versions)), params)
            for channel, version, btype, bblob in blobs.rows:
                values[channel] = self.codec.load(self.serde, btype, bblob,
                                                  f"channel {channel!r} of {where}",
                                                  _at_blob(tid, ns, channel, version))
        checkpoint["channel_values"] = values
        writes = (yield Stmt(self.sql.select_writes, (tid, ns, cid))).rows
        writes.sort(key=lambda w: (w[4], w[0], w[5]))  # writes_sort_key(task_path, task_id, idx)
        pending = [
            (task_id, channel, self.codec.load(self.serde, wtype, wblob, f"a write of {where}",
                                               _at_write(tid, ns, cid, task_id, idx)))
            for task_id, channel, wtype, wblob, _path, idx in writes
        ]
        return CheckpointTuple(
            config={"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint=checkpoint,
            metadata=cast(CheckpointMetadata, load_json(metadata)),
            parent_config=(
                {"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": parent}}
                if parent else None
            ),
            pending_writes=pending,
        )

    def _get_tuple_op(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        tid, ns, cid = _target(config)
        yield from self._authorize(tid, principal_from_config(config), Access.READ)
        if cid:
            row = (yield Stmt(self.sql.select_checkpoint, (tid, ns, cid))).one()
        else:
            row = (yield Stmt(self.sql.select_latest, (tid, ns))).one()
        if row is None:
            return None
        return (yield from self._load_tuple(row))

    def _list_op(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Op[_Tuples]:
        principal = principal_from_config(config)
        configurable = (config or {}).get("configurable") or {}
        sql, where = self.sql.list_prefix, []
        params: _Params = []
        if "thread_id" in configurable:
            tid, ns, cid = _target(config)
            yield from self._authorize(tid, principal, Access.READ)
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
            elif (self.access.level(principal) or 0) >= Access.READ:
                where.append("t.tenant = ?")
                params.append(principal.tenant)
            else:
                where.append("t.tenant = ? AND t.owner = ?")
                params += [principal.tenant, principal.id]
        if filter is not None and not isinstance(filter, Mapping):
            raise ConfigError(f"list(filter=...) takes a dict of metadata values, got {filter!r}.")
        for key, value in (filter or {}).items():
            fragment, values = self.sql.metadata_filter(key, value)
            where.append(fragment)
            params += values
        if before is not None:
            _, _, before_id = _target(before)
            if before_id:
                where.append("c.checkpoint_id < ?")
                params.append(before_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.checkpoint_id DESC"
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise ConfigError(f"limit must be a non-negative int, got {limit!r}.")
            sql += " LIMIT ?"
            params.append(limit)
        rows = (yield Stmt(sql, params)).rows
        out = []
        for row in rows:
            out.append((yield from self._load_tuple(row)))
        return out

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.driver.run(self._get_tuple_op(config), write=False)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.driver.arun(self._get_tuple_op(config), write=False)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from self.driver.run(self._list_op(config, filter, before, limit), write=False)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in await self.driver.arun(self._list_op(config, filter, before, limit),
                                           write=False):
            yield item

    # -- writing -------------------------------------------------------------------------------

    def _put_op(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Op[RunnableConfig]:
        tid, ns, parent = _target(config)
        principal = principal_from_config(config)
        yield from self._claim(tid, principal, ttl=_ttl_of(config), at=(ns, checkpoint["id"]))
        values = checkpoint.get("channel_values") or {}
        blobs = []
        for channel, version in new_versions.items():
            if channel in values:
                btype, blob = self.codec.dump(self.serde, values[channel],
                                              _at_blob(tid, ns, channel, str(version)))
                blobs.append((tid, ns, channel, str(version), btype, blob))
        if blobs:
            yield Stmt(self.sql.insert_blobs, blobs, many=True)
        stored = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        ctype, cblob = self.codec.dump(self.serde, stored,
                                       _at_checkpoint(tid, ns, checkpoint["id"]))
        md = dict(get_serializable_checkpoint_metadata(config, metadata))
        if principal is not None:  # flattened, so list(filter=...) can find them
            md["tenant"] = principal.tenant
            md["principal_id"] = principal.id
        if "run_id" not in md and tid in self.leases:
            md["run_id"] = self.leases[tid]  # the root run holding the lease wrote it
        versions = {ch: str(v) for ch, v in checkpoint["channel_versions"].items()}
        run_id = md.get("run_id")
        yield Stmt(self.sql.upsert_checkpoint, (
            tid, ns, checkpoint["id"], parent, str(run_id) if run_id is not None else None,
            ctype, cblob, dump_json(md), dump_json(versions),
        ))
        return {"configurable": {"thread_id": tid, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint["id"]}}

    def _put_writes_op(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Op[None]:
        tid, ns, cid = _target(config, need_id=True)
        assert cid is not None
        if not writes:
            return
        groups = [_interrupts(v) for ch, v in writes if ch == INTERRUPT]
        yield from self._claim(tid, principal_from_config(config), ttl=_ttl_of(config),
                               at=(ns, cid),
                               interrupts=[i for g in groups for i in g] if groups else None)
        rows = []
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            wtype, wblob = self.codec.dump(self.serde, value,
                                           _at_write(tid, ns, cid, task_id, idx))
            rows.append((tid, ns, cid, task_id, idx, channel, wtype, wblob, task_path))
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        yield Stmt(self.sql.upsert_writes if special else self.sql.insert_writes, rows, many=True)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.driver.run(self._put_op(config, checkpoint, metadata, new_versions),
                               write=True)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self.driver.arun(self._put_op(config, checkpoint, metadata, new_versions),
                                      write=True)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.driver.run(self._put_writes_op(config, writes, task_id, task_path), write=True)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self.driver.arun(self._put_writes_op(config, writes, task_id, task_path),
                               write=True)

    # -- deleting, copying, pruning ------------------------------------------------------------

    def _delete_rows(self, tid: str, *, thread_row: bool = True) -> Op[None]:
        for sql in self.sql.delete_thread_rows:
            yield Stmt(sql, (tid,))
        if thread_row:
            yield Stmt(self.sql.delete_thread, (tid,))

    def _delete_thread_op(self, thread_id: str, principal: Any) -> Op[None]:
        tid = _str_id(thread_id, "thread_id")
        row = yield from self._authorize(tid, principal, Access.ADMIN)
        if row is not None:
            yield from self._delete_rows(tid)

    def _delete_for_runs_op(self, run_ids: Sequence[str], principal: Any) -> Op[None]:
        ids = [_str_id(str(r), "run_id") for r in run_ids]
        if not ids:
            return
        marks = f"({placeholders(ids)})"
        threads = (yield Stmt(self.sql.threads_of_runs + marks, ids)).rows
        for (tid,) in threads:
            yield from self._authorize(tid, principal, Access.ADMIN)
        yield Stmt(self.sql.delete_writes_of_runs + marks + ")", ids)
        yield Stmt(self.sql.delete_checkpoints_of_runs + marks, ids)
        for (tid,) in threads:
            yield Stmt(self.sql.gc_blobs, (tid,))

    def _copy_thread_op(self, source: str, target: str, principal: Any) -> Op[None]:
        src, dst = _str_id(source, "source_thread_id"), _str_id(target, "target_thread_id")
        row = yield from self._authorize(src, principal, Access.READ)
        if row is None:
            return
        yield from self._claim(dst, cast("Principal | None", principal))
        if self.codec.cipher is None:
            for sql in self.sql.copy_rows:
                yield Stmt(sql, (dst, src))
        else:
            yield from self._reseal_copy(src, dst)

    def _reseal_copy(self, src: str, dst: str) -> Op[None]:
        """Copy an encrypted thread: every ciphertext is bound to its thread, so re-seal."""
        move, where = self.codec.move, f"a payload of thread {src!r}"
        rows = (yield Stmt(self.sql.copy_select[0], (src,))).rows
        if rows:
            yield Stmt(self.sql.upsert_checkpoint, [
                (dst, ns, cid, parent, run_id,
                 *move(t, b, where, _at_checkpoint(src, ns, cid), _at_checkpoint(dst, ns, cid)),
                 dump_json(load_json(md)), dump_json(load_json(versions)))
                for ns, cid, parent, run_id, t, b, md, versions in rows], many=True)
        rows = (yield Stmt(self.sql.copy_select[1], (src,))).rows
        if rows:
            yield Stmt(self.sql.insert_blobs, [
                (dst, ns, ch, v, *move(t, b, where, _at_blob(src, ns, ch, v),
                                       _at_blob(dst, ns, ch, v)))
                for ns, ch, v, t, b in rows], many=True)
        rows = (yield Stmt(self.sql.copy_select[2], (src,))).rows
        if rows:
            yield Stmt(self.sql.insert_writes, [
                (dst, ns, cid, task, idx, ch,
                 *move(t, b, where, _at_write(src, ns, cid, task, idx),
                       _at_write(dst, ns, cid, task, idx)), path)
                for ns, cid, task, idx, ch, t, b, path in rows], many=True)

    def _prune_op(self, thread_ids: Sequence[str], strategy: str, principal: Any) -> Op[None]:
        if strategy not in ("keep_latest", "delete"):
            raise ConfigError(
                f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'.")
        for thread_id in thread_ids:
            tid = _str_id(thread_id, "thread_id")
            row = yield from self._authorize(tid, principal, Access.ADMIN)
            if row is None:
                continue
            if strategy == "delete":
                yield from self._delete_rows(tid)
            else:
                yield Stmt(self.sql.prune_writes, (tid, tid))
                yield Stmt(self.sql.prune_checkpoints, (tid, tid))
                yield Stmt(self.sql.gc_blobs, (tid,))

    def _sweep_op(self) -> Op[_Ids]:
        now = time.time()
        expired = [r[0] for r in (yield Stmt(self.sql.expired_threads, (now, now))).rows]
        for tid in expired:
            yield from self._delete_rows(tid)
        return expired

    def delete_thread(self, thread_id: str, *, principal: Principal | None = None) -> None:
        """Delete a thread and everything stored for it (needs admin access to a bound thread)."""
        self.driver.run(self._delete_thread_op(thread_id, principal), write=True)

    async def adelete_thread(self, thread_id: str, *, principal: Principal | None = None) -> None:
        await self.driver.arun(self._delete_thread_op(thread_id, principal), write=True)

    def delete_for_runs(self, run_ids: Sequence[str], *,
                        principal: Principal | None = None) -> None:
        """Delete the checkpoints (and their writes) that the given runs created."""
        self.driver.run(self._delete_for_runs_op(run_ids, principal), write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str], *,
                               principal: Principal | None = None) -> None:
        await self.driver.arun(self._delete_for_runs_op(run_ids, principal), write=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str, *,
                    principal: Principal | None = None) -> None:
        """Copy every checkpoint and write of a thread; the copy belongs to ``principal``."""
        self.driver.run(self._copy_thread_op(source_thread_id, target_thread_id, principal),
                        write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str, *,
                           principal: Principal | None = None) -> None:
        await self.driver.arun(
            self._copy_thread_op(source_thread_id, target_thread_id, principal), write=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest",
              principal: Principal | None = None) -> None:
        """Keep only each namespace's latest checkpoint (``keep_latest``) or delete all."""
        self.driver.run(self._prune_op(thread_ids, strategy, principal), write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest",
                     principal: Principal | None = None) -> None:
        await self.driver.arun(self._prune_op(thread_ids, strategy, principal), write=True)

    def sweep(self) -> _Ids:
        """Delete every expired thread not held by a live run; returns their ids."""
        return self.driver.run(self._sweep_op(), write=True)

    async def asweep(self) -> _Ids:
        return await self.driver.arun(self._sweep_op(), write=True)

    def _threads_op(self, principal: Principal | None, thread_id: str | None,
                    status: str | None, limit: int | None) -> Op[_Rows]:
        where: list[str] = []
        params: _Params = []
        if thread_id is not None:
            yield from self._authorize(thread_id, principal, Access.READ)
            where.append("thread_id = ?")
            params.append(thread_id)
        elif principal is None:
            where.append("tenant IS NULL")
        else:  # indexed: (tenant, updated_at) and (tenant, owner, updated_at)
            where.append("tenant = ?")
            params.append(principal.tenant)
            if (self.access.level(principal) or 0) < Access.READ:
                where.append("owner = ?")
                params.append(principal.id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"{self.sql.thread_info} WHERE {' AND '.join(where)} ORDER BY updated_at DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return (yield Stmt(sql, params)).rows

    @staticmethod
    def _thread_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        tid, tenant, owner, status, waiting, created, updated, expires, lease, lease_exp = row
        return {"thread_id": tid, "tenant": tenant, "owner": owner, "status": status,
                "waiting_on": load_json(waiting) or [], "created_at": created,
                "updated_at": updated, "expires_at": expires,
                "leased": lease is not None and (lease_exp or 0) > time.time()}

    def thread_info(self, thread_id: str, principal: Principal | None) -> dict[str, Any] | None:
        """The identity row of a thread (tenant, owner, status, ...), under the access rule."""
        rows = self.driver.run(self._threads_op(principal, _str_id(thread_id, "thread_id"),
                                                None, None), write=False)
        return self._thread_dict(rows[0]) if rows else None

    def list_threads(self, principal: Principal | None, *, status: str | None = None,
                     limit: int | None = 100) -> _Dicts:
        """The threads ``principal`` may read, most recently updated first.

        A principal sees its tenant's threads it owns, or all of them with a role granted
        ``read``; without a principal only unbound threads are listed. ``status`` is one of
        ``idle``, ``running`` or ``interrupted`` (waiting, e.g. on an approval)."""
        rows = self.driver.run(self._threads_op(principal, None, status, limit), write=False)
        return [self._thread_dict(row) for row in rows]

    async def alist_threads(self, principal: Principal | None, *, status: str | None = None,
                            limit: int | None = 100) -> _Dicts:
        rows = await self.driver.arun(self._threads_op(principal, None, status, limit),
                                      write=False)
        return [self._thread_dict(row) for row in rows]
