"""Steward's checkpoint saver: one implementation, two databases, sync and async.

Each public method builds an operation (a generator of SQL statements, see ``_ops``) and hands
it to the driver, which runs it in one transaction. The thread access rule, lease fencing,
serialization and encryption all happen inside those operations, so a rejected request rolls
back and leaves the database exactly as it was. The thread table's part lives in ``_threads``.
"""

from __future__ import annotations

import builtins
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_DURABILITY
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from steward.checkpointers import housekeeping as hk
from steward.checkpointers import reading, runs, writing
from steward.checkpointers.configs import target
from steward.checkpointers.connect import aopen_saver, open_saver, saver_options
from steward.checkpointers.decoding import Decoder
from steward.checkpointers.deltas import ListCache
from steward.checkpointers.encoding import Encoder
from steward.checkpointers.participants import Joined, WriteFilter, WriteParticipant
from steward.checkpointers.riding import Riding, Settler, Taken, WriteRow
from steward.checkpointers.rows import ThreadRow, WriteCtx
from steward.checkpointers.schema import SCHEMA
from steward.checkpointers.sql import Sql
from steward.checkpointers.threads import Threads
from steward.checkpointers.writing import NULL_TASK_ID
from steward.identity import Access, AccessRule, Principal, Vote
from steward.storage.codec import Codec
from steward.storage.crypto import Cipher
from steward.storage.drivers import Driver
from steward.storage.envelope import ENVELOPE, Envelope
from steward.storage.envelope import SCHEMA as KEYS_SCHEMA
from steward.storage.keys import DataKeyProvider, KeySource
from steward.storage.migrations import Schema, setup_op
from steward.storage.ops import Op, StaleView
from steward.storage.passwords import password_option
from steward.storage.places import at_write
from steward.storage.values import str_id

__all__ = ["StewardSaver"]

RIDE_FOR = 0.2  # seconds a held task write waits for its thread's next write (see riding)
T = TypeVar("T")

# Aliases: inside the class, ``list`` names the saver's method.
_Ids = list[str]
_Tuples = list[CheckpointTuple]
_Params = list[Any]
_Dicts = list[dict[str, Any]]
_Joining = list[WriteParticipant]
_Joined = list[Joined]


class StewardSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that knows who owns each thread: the saver ``steward.open``
    builds, on SQLite or PostgreSQL alike.

    ``steward.open(url)`` gives it with the rest of the runtime (``rt.checkpointer``); for the
    checkpointer alone, ``with StewardSaver.from_conn_string(url) as saver:`` (or ``async with
    StewardSaver.afrom_conn_string(url)``), as with LangGraph's stock savers.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        serde: SerializerProtocol | None = None,
        cipher: Cipher | None = None,
        data_keys: DataKeyProvider | None = None,
        access: AccessRule | None = None,
        default_ttl: float | None = None,
        lease_ttl: float = 30.0,
        schemas: Sequence[Schema] = (),
        threads: Threads | None = None,
        participants: Sequence[WriteParticipant] = (),
        write_filter: WriteFilter | None = None,
    ) -> None:
        """``cipher``: one key for every payload; ``data_keys``: a data key per thread instead,
        wrapped by a key service (``steward.storage.envelope``). ``threads``: the thread table
        shared with the other parts (built from ``access``, ``default_ttl`` and ``lease_ttl``
        when not given); ``participants``: whose rows join
        its write transactions; ``write_filter``: what screens a task's writes; ``schemas``:
        the tables of the parts that share its database, set up with its own."""
        super().__init__(serde=serde)
        self.driver = driver
        self.sql = Sql(driver.dialect)
        self._pg = driver.dialect == "postgres"  # writes of known threads: one statement
        self.codec = Codec(cipher, Envelope(data_keys) if data_keys is not None else None)
        self.threads = threads or Threads(driver, access=access, default_ttl=default_ttl,
                                          lease_ttl=lease_ttl)
        self.participants = tuple(participants)
        # A run's task writes ride with its next checkpoint (riding): the first participant.
        self._riding = Riding(self.sql, self.threads.leases)
        self._settler = Settler(self._riding, self._settle, RIDE_FOR)
        # The latest checkpoint each run of this process read with its lease (runs).
        self._prefetches = runs.Prefetches(self.threads.leases)
        self.write_filter = write_filter
        self.schemas = tuple(schemas)
        self._thread_tables = [t for schema in self.schemas for t in schema.thread_tables]
        self._lists = ListCache()  # growing lists stored or read last (see _lists)

    @classmethod
    def from_conn_string(
        cls, url: str, *, encryption_key: KeySource | None = None,
        thread_roles: Mapping[str, str] | None = None, default_ttl: float | None = None,
        lease_ttl: float = 30.0, pool_size: int = 10, trust_unidentified: bool = False,
        password: str | Callable[[], str] | None = None,
    ) -> contextlib.AbstractContextManager[StewardSaver]:
        """``with StewardSaver.from_conn_string(url) as saver:`` -- the saver alone, on
        ``sqlite:///path``, ``sqlite://:memory:`` or ``postgresql://...`` (a sqlite3
        connection or a psycopg ``ConnectionPool``; async methods work too), its schema set up,
        closed on exit. The options mean what they mean for :func:`steward.open`, which builds
        the same saver; guards, approvals, effects, the audit trail and the store need that
        runtime around it."""
        options = saver_options(encryption_key=encryption_key, thread_roles=thread_roles,
                                default_ttl=default_ttl, lease_ttl=lease_ttl,
                                trust_unidentified=trust_unidentified)
        return open_saver(cls, url, pool_size, options, password_option(password))

    @classmethod
    def afrom_conn_string(
        cls, url: str, *, encryption_key: KeySource | None = None,
        thread_roles: Mapping[str, str] | None = None, default_ttl: float | None = None,
        lease_ttl: float = 30.0, pool_size: int = 10, trust_unidentified: bool = False,
        password: str | Callable[[], str] | None = None,
    ) -> contextlib.AbstractAsyncContextManager[StewardSaver]:
        """``async with StewardSaver.afrom_conn_string(url) as saver:`` -- as
        :meth:`from_conn_string`, on a psycopg ``AsyncConnectionPool`` bound to the running
        event loop for PostgreSQL (the twin of :func:`steward.aopen`)."""
        options = saver_options(encryption_key=encryption_key, thread_roles=thread_roles,
                                default_ttl=default_ttl, lease_ttl=lease_ttl,
                                trust_unidentified=trust_unidentified)
        return aopen_saver(cls, url, pool_size, options, password_option(password))

    # -- setup ---------------------------------------------------------------------------------

    def _setup_op(self) -> Op[None]:
        cipher, keys = self.codec.cipher, self.codec.keys
        return setup_op(self.driver.dialect, self.driver.url,
                        (SCHEMA, KEYS_SCHEMA, *self.schemas),
                        cipher.fingerprint if cipher else ENVELOPE if keys else None,
                        "SELECT 1 FROM steward_checkpoints LIMIT 1")

    def setup(self) -> None:
        """Create or migrate the schema; idempotent and safe from several processes at once."""
        self.driver.run(self._setup_op(), write=True)

    async def asetup(self) -> None:
        await self.driver.arun(self._setup_op(), write=True)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        # Zero-padded so that versions compare as strings in numeric order (older 32-digit
        # versions sort below these); a random suffix keeps two forks of one parent from
        # colliding on a blob's version. Short, because every checkpoint repeats them. Not
        # from os.urandom (secrets): nothing here is secret, and its system call on LangGraph's
        # thread, once per channel and step, lets the writer thread take the GIL mid-step.
        # random's generator is seeded from the system's and reseeded in a forked child.
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:010}.{random.getrandbits(32):08x}"

    # -- reading -------------------------------------------------------------------------------

    def _encoder(self, codec: Codec | None = None) -> Encoder:
        """Checkpoints to rows with this saver's serde and list cache, sealed by ``codec`` (the
        thread's: ``Codec.thread_op``; default the saver's, when it is one key or none)."""
        return Encoder(codec or self.codec, self.serde, self._lists)

    def _decoder(self, codec: Codec | None = None) -> Decoder:
        """Rows to checkpoints with this saver's serde (a ``with_allowlist`` copy has its own),
        opened by ``codec`` (as for ``_encoder``)."""
        return Decoder(self.sql, codec or self.codec, self.serde, self._lists)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        first = self._prefetches.first_read(config)
        if first is not None:
            return first.latest
        for tid in self._held_for(config):
            self._settle(tid)
        return self.driver.run(reading.get_tuple_op(self, config), write=False)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        first = self._prefetches.first_read(config)
        if first is not None:
            return first.latest
        for tid in self._held_for(config):
            await self._asettle(tid)
        return await self.driver.arun(reading.get_tuple_op(self, config), write=False)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        for tid in self._held_for(config):
            self._settle(tid)
        yield from self.driver.run(reading.list_op(self, config, filter, before, limit),
                                   write=False)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for tid in self._held_for(config):
            await self._asettle(tid)
        for item in await self.driver.arun(reading.list_op(self, config, filter, before, limit),
                                           write=False):
            yield item

    # -- writing -------------------------------------------------------------------------------

    # -- what a run does with its thread: leases, through the thread table ---------------------

    def acquire_lease(self, thread_id: str, holder: str, principal: Principal | None,
                      ttl: float | None = None, subjects: Sequence[str] = (),
                      vote: Vote | None = None) -> None:
        """Make ``holder`` the only run allowed to write the thread, or raise ThreadBusy.

        ``ttl`` is the thread's time to live in case this creates it; ``subjects`` are
        recorded as the thread's subjects in the same transaction; ``vote`` says the run
        resumes the thread or goes on from where it stopped (the approver's reach). The
        thread's latest checkpoint is read with the lease (``runs``)."""
        self._took(thread_id, runs.run_steps(self.driver, runs.acquire_steps(
            self, thread_id, holder, principal, ttl, subjects, vote, self.driver.holder())))

    async def aacquire_lease(self, thread_id: str, holder: str, principal: Principal | None,
                             ttl: float | None = None, subjects: Sequence[str] = (),
                             vote: Vote | None = None) -> None:
        self._took(thread_id, await runs.arun_steps(self.driver, runs.acquire_steps(
            self, thread_id, holder, principal, ttl, subjects, vote,
            await self.driver.aholder())))

    @property
    def leased(self) -> builtins.list[str]:
        """The threads a run of this process holds the lease of now (a host's "busy")."""
        # A copy first: runs on other threads take and give back leases meanwhile.
        return list(self.threads.leases.copy())

    def _took(self, tid: str, found: runs.Prefetched) -> None:
        self.threads.hold(tid, found.holder)
        self.threads.remember({tid: found.row})  # the run's first write may go fast
        self._prefetches.put(tid, found)

    def _letting_go(self, tid: str, holder: str) -> ThreadRow | None:
        view = self.threads.view(tid)
        self.threads.let_go(tid, holder)
        self._prefetches.drop(tid)
        return view

    def release_lease(self, thread_id: str, holder: str) -> None:
        """Give the lease back at the run's end, with what the run still holds; flushed when
        the run left steps not yet on disk (durability "async", see ``put``)."""
        view = self._letting_go(thread_id, holder)
        try:
            with self.threads.flushing(thread_id) as durable:
                runs.run_steps(self.driver, runs.release_steps(self, thread_id, holder, view),
                               durable=durable)
        finally:
            self._riding.drop(thread_id)  # the run is over: what it could not write is lost

    async def arelease_lease(self, thread_id: str, holder: str) -> None:
        view = self._letting_go(thread_id, holder)
        try:
            with self.threads.flushing(thread_id) as durable:
                await runs.arun_steps(self.driver,
                                      runs.release_steps(self, thread_id, holder, view),
                                      durable=durable)
        finally:
            self._riding.drop(thread_id)

    # -- the thread table, as the saver's callers know it ----------------------------------------

    def thread_info(self, thread_id: str, principal: Principal | None) -> dict[str, Any] | None:
        """The identity row of a thread (tenant, owner, status, what it waits on, subjects),
        under the access rule."""
        return self.driver.run(self.threads.info_op(str_id(thread_id, "thread_id"), principal),
                               write=False)

    async def athread_info(self, thread_id: str,
                           principal: Principal | None) -> dict[str, Any] | None:
        return await self.driver.arun(
            self.threads.info_op(str_id(thread_id, "thread_id"), principal), write=False)

    def list_threads(self, principal: Principal | None, *, status: str | None = None,
                     limit: int | None = 100) -> _Dicts:
        """The threads ``principal`` may read, newest first (see ``Threads.list_threads``)."""
        return self.threads.list_threads(principal, status=status, limit=limit)

    async def alist_threads(self, principal: Principal | None, *, status: str | None = None,
                            limit: int | None = 100) -> _Dicts:
        return await self.threads.alist_threads(principal, status=status, limit=limit)

    def check_access(self, thread_id: str, principal: Principal | None,
                     need: Access | str = "write") -> None:
        """Raise ThreadAccessDenied unless ``principal`` may ``need`` ("read", "write",
        "admin") the thread, as the access rule stands now (an approver's reach allows reading
        only here: a vote is a resume). Changes nothing."""
        self.driver.run(self.threads.check_op(str_id(thread_id, "thread_id"), principal,
                                              Access.parse(need)), write=False)

    async def acheck_access(self, thread_id: str, principal: Principal | None,
                            need: Access | str = "write") -> None:
        await self.driver.arun(self.threads.check_op(str_id(thread_id, "thread_id"), principal,
                                                     Access.parse(need)), write=False)

    def add_subjects(self, thread_id: str, principal: Principal | None,
                     subjects: Sequence[str]) -> None:
        """Record people the thread holds personal data about (see ``steward.add_subjects``)."""
        self.threads.add_subjects(thread_id, principal, subjects)

    async def aadd_subjects(self, thread_id: str, principal: Principal | None,
                            subjects: Sequence[str]) -> None:
        await self.threads.aadd_subjects(thread_id, principal, subjects)

    # -- running operations against this process's caches ---------------------------------------

    def _write(self, make: Callable[[WriteCtx], Op[T]], *, durable: bool = True,
               unflushed: str | None = None) -> T:
        """Run a write operation trusting this process's caches; if a guard finds them stale
        (StaleView), forget them and run it again the slow way. ``unflushed``: a thread whose
        write is committed without a flush and noted as waiting for one (see ``put``)."""
        durable = durable and unflushed is None
        ctx = WriteCtx(optimistic=True)
        try:
            try:
                result = self.driver.run(make(ctx), write=True, durable=durable)
            except StaleView:
                self.forget()
                self._riding.give_back(ctx.taken)
                ctx = WriteCtx(optimistic=False)
                result = self.driver.run(make(ctx), write=True, durable=durable)
        except BaseException:
            self._riding.give_back(ctx.taken)
            raise
        self._remember(ctx, unflushed)
        return result

    async def _awrite(self, make: Callable[[WriteCtx], Op[T]], *, durable: bool = True,
                      unflushed: str | None = None) -> T:
        durable = durable and unflushed is None
        ctx = WriteCtx(optimistic=True)
        try:
            try:
                result = await self.driver.arun(make(ctx), write=True, durable=durable)
            except StaleView:
                self.forget()
                self._riding.give_back(ctx.taken)
                ctx = WriteCtx(optimistic=False)
                result = await self.driver.arun(make(ctx), write=True, durable=durable)
        except BaseException:
            self._riding.give_back(ctx.taken)
            raise
        self._remember(ctx, unflushed)
        return result

    def _remember(self, ctx: WriteCtx, unflushed: str | None = None) -> None:
        """What a committed write leaves this process knowing."""
        if unflushed is not None:
            self.threads.unflushed(unflushed)
        self.threads.remember(ctx.views)
        self._lists.update(ctx.lists)
        if ctx.keys and self.codec.keys is not None:
            self.codec.keys.confirm(ctx.keys)  # data keys the write made: committed now

    def forget(self) -> None:
        """Trust no cached thread row, list or data key (after a change made behind the saver's
        back, such as an erasure)."""
        self.threads.forget()
        self._lists.clear()
        if self.codec.keys is not None:
            self.codec.keys.forget()

    def close(self) -> None:
        self._settler.close()
        self.threads.close()

    # -- task writes held for the thread's next write (riding) ---------------------------------

    def _hold(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
              task_path: str) -> bool:
        """Keep an ordinary task's writes for the thread's next write, while a run of this
        process holds its lease; False: write them now (they change the thread row, a filter
        screens them, or no run of this process holds the thread)."""
        if task_id == NULL_TASK_ID or not writes or any(ch in WRITES_IDX_MAP for ch, _ in writes):
            return False
        tid, ns, cid = target(config, need_id=True)
        if cid is None or tid not in self.threads.leases:
            return False
        if self.write_filter is not None and self.write_filter.screen(task_id, writes) is not None:
            return False
        codec = self.codec.thread(tid)  # the run holds the lease: its thread's key stays
        if codec is None:
            return False  # its data key must be read first: write them now
        rows: list[WriteRow] = [
            (ns, cid, task_id, idx, channel,
             *codec.dump(self.serde, value, at_write(tid, ns, cid, task_id, idx)), task_path)
            for idx, (channel, value) in enumerate(writes)]
        if not self._riding.hold(tid, rows):
            return False
        self._settler.ensure()
        return True

    def _held_for(self, config: RunnableConfig | None) -> _Ids:
        """The threads a read of ``config`` covers whose task writes are still held."""
        tid = (config or {}).get("configurable", {}).get("thread_id")
        return self._riding.waiting(str(tid) if tid is not None else None)

    def _settle(self, tid: str) -> None:
        """Write a thread's held task writes now, on their own."""
        taken: Taken = []
        try:
            self.driver.run(self._riding.settle_op(tid, lambda: self.threads.locked_op(tid),
                                                   taken), write=True, durable=False)
        except BaseException:
            self._riding.give_back(taken)
            raise

    async def _asettle(self, tid: str) -> None:
        taken: Taken = []
        try:
            await self.driver.arun(self._riding.settle_op(
                tid, lambda: self.threads.locked_op(tid), taken), write=True, durable=False)
        except BaseException:
            self._riding.give_back(taken)
            raise

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; its commit is flushed to disk before this returns, but for a
        run under durability "async" (see ``_unflushed``)."""
        return self._write(
            lambda v: writing.put_op(self, config, checkpoint, metadata, new_versions, v),
            unflushed=self._unflushed(config))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._awrite(
            lambda v: writing.put_op(self, config, checkpoint, metadata, new_versions, v),
            unflushed=self._unflushed(config))

    def _unflushed(self, config: RunnableConfig) -> str | None:
        """The thread, when a checkpoint of it may be committed without flushing it to disk:
        a run under durability "async" that holds the thread's lease here. Such a run already
        lets LangGraph write its steps behind it, and a crash lose the last of them; its
        commits still reach the database's log at once (a crash of this process loses none of
        them), and reach the disk with the lease's next renewal (within ``lease_ttl / 3``),
        any flushed commit, or the run's end, whose release is flushed: when ``invoke``
        returns, the run is on disk, as with the stock savers, at one flush per run instead
        of one per step."""
        conf = config.get("configurable") or {}
        if conf.get(CONFIG_KEY_DURABILITY) != "async":
            return None
        tid = str(conf.get("thread_id"))
        return tid if tid in self.threads.leases else None

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes; the commit is not flushed to disk (``durable=False``).

        Why that is safe: LangGraph promises that a task whose writes were saved is not run
        again. A crash of this process keeps the commit (it is in the database's log, in the
        OS cache or on the server), so the promise holds. An OS or server crash may drop it,
        but then the task simply runs again, exactly as if the crash had come before its
        writes. The step's next checkpoint cannot outlive them: whenever it is flushed (at its
        commit, or later under durability "async", see ``put``), the flush of its log record
        flushes every earlier record, these writes included (SQLite WAL with
        ``synchronous=FULL``; Postgres with ``synchronous_commit`` on). So a step costs at most
        one flush: its checkpoint's.

        While a run of this process holds the thread's lease, an ordinary task's writes are
        not even committed on their own: they ride with the thread's next write, the step's
        checkpoint (see ``riding``), so a step costs one commit."""
        if self._hold(config, writes, task_id, task_path):
            return
        self._write(lambda v: writing.put_writes_op(self, config, writes, task_id, task_path, v),
                    durable=False)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if self._hold(config, writes, task_id, task_path):
            return
        await self._awrite(
            lambda v: writing.put_writes_op(self, config, writes, task_id, task_path, v),
            durable=False)

    # -- deleting, copying, pruning ------------------------------------------------------------

    def delete_thread(self, thread_id: str, *, principal: Principal | None = None) -> None:
        """Delete a thread and everything stored for it (needs admin access to a bound thread)."""
        self.driver.run(hk.delete_thread_op(self, thread_id, principal), write=True)

    async def adelete_thread(self, thread_id: str, *, principal: Principal | None = None) -> None:
        await self.driver.arun(hk.delete_thread_op(self, thread_id, principal), write=True)

    def delete_for_runs(self, run_ids: Sequence[str], *,
                        principal: Principal | None = None) -> None:
        """Delete the checkpoints (and their writes) that the given runs created."""
        self.driver.run(hk.delete_for_runs_op(self, run_ids, principal), write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str], *,
                               principal: Principal | None = None) -> None:
        await self.driver.arun(hk.delete_for_runs_op(self, run_ids, principal), write=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str, *,
                    principal: Principal | None = None) -> None:
        """Copy every checkpoint and write of a thread; the copy belongs to ``principal``."""
        self.driver.run(hk.copy_thread_op(self, source_thread_id, target_thread_id,
                                          principal), write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str, *,
                           principal: Principal | None = None) -> None:
        await self.driver.arun(hk.copy_thread_op(self, source_thread_id, target_thread_id,
                                                 principal), write=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest",
              principal: Principal | None = None) -> None:
        """Keep only each namespace's latest checkpoint (``keep_latest``) or delete all."""
        self.driver.run(hk.prune_op(self, thread_ids, strategy, principal), write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest",
                     principal: Principal | None = None) -> None:
        await self.driver.arun(hk.prune_op(self, thread_ids, strategy, principal), write=True)

    def sweep(self) -> _Ids:
        """Delete every expired thread not held by a live run; returns their ids."""
        return self.driver.run(hk.sweep_op(self), write=True)

    async def asweep(self) -> _Ids:
        return await self.driver.arun(hk.sweep_op(self), write=True)
