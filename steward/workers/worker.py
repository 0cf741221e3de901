"""``steward worker``: a process that executes submitted runs and keeps the periodic duties.

**On PostgreSQL** it is a procrastinate worker (any number of them, on any machines, on one
database): it fetches ``steward.run`` jobs (``steward.workers.execute``), at most one per
thread (the job's ``lock`` is its thread), ``concurrency`` at a time, and beats its heartbeat
every ``heartbeat`` seconds. A worker that dies (SIGKILL, its machine lost) stops beating; once
its heartbeat is ``stalled_after`` seconds old, any live worker puts its jobs back in the queue
(``requeue_stalled``: procrastinate's ``get_stalled_jobs`` and ``retry_job``, one worker at a
time under an advisory lock) and the next free worker continues each run from its last
checkpoint; the dead run's lease is void at once (``steward.storage.liveness``).

**On SQLite** (one machine) there is no job queue: the worker keeps the periodic duties only.

**Periodic duties** (both backends): ``Duty`` callables run every ``every`` seconds, the first
two ``rt.approvals.aexpire`` (approval requests whose time is up) and ``rt.asweep`` (threads
and memories past their retention); more can be passed in.

SIGTERM or SIGINT stops it gracefully: no new job is fetched, running ones get ``grace``
seconds to finish, then are cancelled and go back to the queue (their lease released), and
the worker leaves procrastinate's table of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import steward
from steward.errors import StorageError, ThreadBusy
from steward.jobs.graphs import Graphs
from steward.jobs.queue import TASK, JobQueue, procrastinate_module
from steward.options import RuntimeOptions
from steward.workers.execute import execute

__all__ = ["Duty", "Worker", "default_duties"]

log = logging.getLogger("steward.worker")
_REAPER_LOCK = 0x57E3A2E  # pg_try_advisory_lock key: one worker requeues at a time


@dataclasses.dataclass(frozen=True)
class Duty:
    """A periodic duty: ``run(rt)`` every ``every`` seconds (errors are logged, not fatal)."""

    name: str
    run: Callable[[steward.Runtime], Awaitable[Any]]
    every: float = 2.0


def default_duties(every: float = 2.0) -> list[Duty]:
    """Approval expiry and the retention sweep (``rt.asweep`` expires approvals too; the
    separate duty is what durable timers will build on)."""
    return [Duty("expire approvals", lambda rt: rt.approvals.aexpire(), every),
            Duty("sweep", lambda rt: rt.asweep(), every)]


class Worker:
    """One worker process's loop (see the module's docstring); ``run`` until stopped."""

    def __init__(self, url: str, graphs: Graphs, *, options: RuntimeOptions | None = None,
                 concurrency: int = 1, heartbeat: float = 1.0, stalled_after: float = 5.0,
                 poll: float = 1.0, grace: float = 30.0,
                 duties: Sequence[Duty] | None = None) -> None:
        self.url = url
        self.graphs = graphs
        self.options: RuntimeOptions = options or {}
        self.concurrency = concurrency
        self.heartbeat = heartbeat
        self.stalled_after = stalled_after
        self.poll = poll
        self.grace = grace
        self.duties = list(default_duties() if duties is None else duties)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``stop``); ``ready`` is told the mode once started
        (``"postgres"`` or ``"sqlite"``)."""
        async with steward.aopen(self.url, **self.options) as rt:
            dsn = rt._dsn
            if dsn is None:
                await self._sqlite(rt, ready)
            else:
                await self._postgres(rt, dsn, ready)

    async def _sqlite(self, rt: steward.Runtime, ready: Callable[[str], None] | None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            duties = asyncio.create_task(self._duties(rt, []))
            if ready:
                ready("sqlite")
            await self._stop.wait()
            duties.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await duties
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _postgres(self, rt: steward.Runtime, dsn: str,
                        ready: Callable[[str], None] | None) -> None:
        pc = procrastinate_module()
        queue = JobQueue(dsn)
        app = await queue.aapp()
        try:
            self._register(app, rt)
            reaper = Duty("requeue stalled runs",
                          lambda _rt: self.requeue_stalled(app, dsn), self.heartbeat)
            duties = asyncio.create_task(self._duties(rt, [reaper]))
            if ready:
                ready("postgres")
            try:
                await app.run_worker_async(
                    concurrency=self.concurrency, name=f"steward-{id(self):x}",
                    update_heartbeat_interval=self.heartbeat,
                    stalled_worker_timeout=self.stalled_after,
                    fetch_job_polling_interval=self.poll,
                    shutdown_graceful_timeout=self.grace,
                    install_signal_handlers=True, delete_jobs=pc.jobs.DeleteJobCondition.NEVER)
            finally:
                duties.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await duties
        finally:
            await queue.aclose()

    def _register(self, app: Any, rt: steward.Runtime) -> None:
        pc = procrastinate_module()
        # Retried: a run that found its thread busy (a run outside the workers holds it), a
        # database failure, a run cut short by shutdown. A run that failed on its own (a node
        # raised, a policy forbade) is not: the thread shows where it stopped.
        retry = pc.RetryStrategy(max_attempts=50, wait=1, retry_exceptions=[
            ThreadBusy, StorageError, OSError, asyncio.CancelledError, pc.exceptions.JobAborted])
        graphs = self.graphs

        @app.task(name=TASK, pass_context=True, retry=retry)  # type: ignore[untyped-decorator]
        async def run(context: Any, **job: Any) -> None:
            is_resume = "resume" in job
            await execute(rt, graphs, int(context.job.id), graph=job["graph"],
                          thread_id=job["thread_id"], principal=job["principal"],
                          input=job.get("input"), resume=job.get("resume"),
                          is_resume=is_resume, retried=context.job.attempts > 0)

    async def requeue_stalled(self, app: Any, dsn: str) -> list[int]:
        """Put the runs of dead workers (heartbeat older than ``stalled_after``) back in the
        queue; one worker at a time (a session advisory lock), so that a job another worker
        took meanwhile is never requeued. Returns their job ids."""
        import psycopg

        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)",
                                            (_REAPER_LOCK,))).fetchone()
            if not row or not row[0]:
                return []
            requeued = []
            for job in await app.job_manager.get_stalled_jobs(
                    seconds_since_heartbeat=self.stalled_after, task_name=TASK):
                await app.job_manager.retry_job(job)
                log.warning("requeued run %s of thread %s: its worker stopped beating",
                            job.id, job.task_kwargs.get("thread_id"))
                requeued.append(int(job.id))
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_REAPER_LOCK,))
            return requeued

    async def _duties(self, rt: steward.Runtime, extra: list[Duty]) -> None:
        duties = [*extra, *self.duties]
        due = dict.fromkeys(range(len(duties)), 0.0)
        loop = asyncio.get_running_loop()
        while True:
            for i, duty in enumerate(duties):
                if loop.time() < due[i]:
                    continue
                due[i] = loop.time() + duty.every
                try:
                    await duty.run(rt)
                except Exception:
                    log.exception("periodic duty %r failed; it runs again in %ss",
                                  duty.name, duty.every)
            await asyncio.sleep(min(d.every for d in duties) / 2)
