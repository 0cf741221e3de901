"""Submitted runs wait in procrastinate's jobs table, on the runtime's own PostgreSQL database.

A job is one run: task ``steward.run`` with the graph's name, the thread, the submitting
principal (as a dict) and either ``input`` (a dict) or ``resume`` (the value of a
``Command(resume=...)``). Its procrastinate ``lock`` is the thread id, so that procrastinate
starts no second job of a thread while one is doing (Steward's lease is the second line).

procrastinate is the ``workers`` extra (``pip install 'langgraph-steward[workers]'``); it is
imported only here, on first use. Its tables are created on first use too, once, under an
advisory lock (several workers may start together).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any

from steward.errors import ConfigError, StorageError
from steward.storage.passwords import Password, apool_kwargs, connect_args, pool_kwargs

if TYPE_CHECKING:
    import procrastinate

__all__ = ["FINAL", "TASK", "JobQueue", "Submitted", "procrastinate_module"]

TASK = "steward.run"
# procrastinate's statuses after which a job changes no more.
FINAL = frozenset({"succeeded", "failed", "cancelled", "aborted"})
_SCHEMA_LOCK = 0x57E3A2D  # pg_advisory_xact_lock key: one worker creates the tables
INSTALL = "pip install 'langgraph-steward[workers]'"


def procrastinate_module() -> Any:
    """procrastinate, or ConfigError saying how to install it."""
    try:
        import procrastinate
    except ImportError as exc:
        raise ConfigError(f"submitted runs and `steward worker` need procrastinate: {INSTALL}."
                          ) from exc
    return procrastinate


@dataclasses.dataclass(frozen=True)
class Submitted:
    """What ``rt.submit`` returns: the job that will run, on which thread, of which graph.
    ``rt.run_status(handle, wait=...)`` tells how it went."""

    job_id: int
    thread_id: str
    graph: str


class JobQueue:
    """procrastinate's App on one PostgreSQL database, opened on first use: a sync one for
    ``defer``/``status``, an async one for their twins and for the worker. ``password``, if
    given, is asked for each connection (``steward.storage.passwords``)."""

    def __init__(self, dsn: str, password: Password | None = None) -> None:
        self.dsn = dsn
        self.password = password
        self._sync: procrastinate.App | None = None
        self._async: procrastinate.App | None = None
        self._ready = False

    def app(self) -> procrastinate.App:
        if self._sync is None:
            pc = procrastinate_module()
            self.ensure_schema()
            app = pc.App(connector=pc.SyncPsycopgConnector(
                conninfo=self.dsn, kwargs=pool_kwargs(self.password)))
            app.open()
            self._sync = app
        return self._sync

    async def aapp(self) -> procrastinate.App:
        if self._async is None:
            pc = procrastinate_module()
            await asyncio.to_thread(self.ensure_schema)
            app = pc.App(connector=pc.PsycopgConnector(
                conninfo=self.dsn, kwargs=apool_kwargs(self.password)))
            await app.open_async()
            self._async = app
        return self._async

    def ensure_schema(self) -> None:
        """Create procrastinate's tables unless they exist (once, whoever comes first)."""
        if self._ready:
            return
        pc = procrastinate_module()
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, **connect_args(self.password))
            with conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
                if row is None or row[0] is None:
                    conn.execute(pc.schema.SchemaManager.get_schema())
        except psycopg.Error as exc:
            raise StorageError(f"could not create the job tables: {exc}; check the database "
                               "URL and that the user may create tables.") from exc
        self._ready = True

    async def aconnect(self) -> Any:
        """A psycopg ``AsyncConnection`` of its own (autocommit) to the queue's database: for
        a session's advisory lock. The caller closes it (``async with``)."""
        import psycopg

        kwargs = await asyncio.to_thread(connect_args, self.password, autocommit=True)
        return await psycopg.AsyncConnection.connect(self.dsn, **kwargs)

    @staticmethod
    def _args(graph: str, thread_id: str, principal: dict[str, Any],
              payload: dict[str, Any]) -> dict[str, Any]:
        return {"graph": graph, "thread_id": thread_id, "principal": principal, **payload}

    def defer(self, graph: str, thread_id: str, principal: dict[str, Any],
              payload: dict[str, Any]) -> Submitted:
        """Queue a run (``payload``: ``{"input": ...}`` or ``{"resume": ...}``)."""
        job = self.app().configure_task(TASK, lock=thread_id).defer(
            **self._args(graph, thread_id, principal, payload))
        return Submitted(job, thread_id, graph)

    async def adefer(self, graph: str, thread_id: str, principal: dict[str, Any],
                     payload: dict[str, Any]) -> Submitted:
        app = await self.aapp()
        job = await app.configure_task(TASK, lock=thread_id).defer_async(
            **self._args(graph, thread_id, principal, payload))
        return Submitted(job, thread_id, graph)

    def status(self, job_id: int, wait: float = 0.0) -> str:
        """The job's procrastinate status (``todo``, ``doing``, ``succeeded``, ``failed``,
        ...), waiting up to ``wait`` seconds for a final one."""
        deadline = time.monotonic() + wait
        while True:
            status = str(self.app().job_manager.get_job_status(job_id).value)
            if status in FINAL or time.monotonic() >= deadline:
                return status
            time.sleep(0.1)

    async def astatus(self, job_id: int, wait: float = 0.0) -> str:
        deadline = time.monotonic() + wait
        app = await self.aapp()
        while True:
            status = str((await app.job_manager.get_job_status_async(job_id)).value)
            if status in FINAL or time.monotonic() >= deadline:
                return status
            await asyncio.sleep(0.1)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        self.close()
        if self._async is not None:
            await self._async.close_async()
            self._async = None
