"""``steward worker``: a process that executes submitted runs, fires timers and keeps the
periodic duties.

**On PostgreSQL** it is a procrastinate worker (any number of them, on any machines, on one
database): it fetches ``steward.run`` jobs (``steward.workers.execute``), at most one per
thread (the job's ``lock`` is its thread), ``concurrency`` at a time, and beats its heartbeat
every ``heartbeat`` seconds. A worker that dies (SIGKILL, its machine lost) stops beating; once
its heartbeat is ``stalled_after`` seconds old, any live worker puts its jobs back in the queue
(``requeue_stalled``: procrastinate's ``get_stalled_jobs`` and ``retry_job``, one worker at a
time under an advisory lock) and the next free worker continues each run from its last
checkpoint; the dead run's lease is void at once (``steward.storage.liveness``).

**Timers** (``steward.workers.timers``), every ``timers_every`` seconds: approval requests
whose time is up are closed (expired, or escalated), and the threads to wake (an approval they
wait on ran out of time; a run that died) are woken: on PostgreSQL by a ``steward.run`` job
(one queued per thread at a time: procrastinate's ``queueing_lock``), on SQLite in this
process.

**On SQLite** (one machine) there is no job queue: the worker fires the timers, wakes the
threads and keeps the periodic duties.

**Periodic duties** (both backends): ``Duty`` callables run every ``every`` seconds; the
default one is ``rt.asweep`` (threads and memories past their retention); more can be passed.

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
from steward.workers.timers import Wake, due, wake

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
    """The retention sweep: threads past their time to live, memories past their retention
    (and approvals past their time, which the timers close first)."""
    return [Duty("sweep", lambda rt: rt.asweep(), every)]


class Worker:
    """One worker process's loop (see the module's docstring); ``run`` until stopped."""

    def __init__(self, url: str, graphs: Graphs, *, options: RuntimeOptions | None = None,
                 concurrency: int = 1, heartbeat: float = 1.0, stalled_after: float = 5.0,
                 poll: float = 1.0, grace: float = 30.0, timers_every: float = 1.0,
                 duties: Sequence[Duty] | None = None) -> None:
        self.url = url
        self.graphs = graphs
        self.options: RuntimeOptions = options or {}
        self.concurrency = concurrency
        self.heartbeat = heartbeat
        self.stalled_after = stalled_after
        self.poll = poll
        self.grace = grace
        self.timers_every = timers_every
        self.duties = list(default_duties() if duties is None else duties)
        self._stop = asyncio.Event()
        self._skipped: set[tuple[str, str, float]] = set()  # threads no worker here can wake
        self._waking: dict[str, asyncio.Task[Any]] = {}  # SQLite: wake-ups in this process

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
            timers = Duty("timers", lambda _rt: self.fire_timers(rt, None), self.timers_every)
            duties = asyncio.create_task(self._duties(rt, [timers]))
            if ready:
                ready("sqlite")
            await self._stop.wait()
            duties.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await duties
            for task in list(self._waking.values()):
                task.cancel()  # its run releases the lease; the thread stays stalled
            await asyncio.gather(*self._waking.values(), return_exceptions=True)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _postgres(self, rt: steward.Runtime, dsn: str,
                        ready: Callable[[str], None] | None) -> None:
        pc = procrastinate_module()
        queue = JobQueue(dsn, rt._password)
        app = await queue.aapp()
        try:
            self._register(app, rt)
            reaper = Duty("requeue stalled runs",
                          lambda _rt: self.requeue_stalled(app, queue), self.heartbeat)
            timers = Duty("timers", lambda _rt: self.fire_timers(rt, app), self.timers_every)
            duties = asyncio.create_task(self._duties(rt, [reaper, timers]))
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
            if "wake" in job:
                await wake(rt, graphs, graph=job["graph"], thread_id=job["thread_id"],
                           principal=job["principal"], job_id=int(context.job.id))
                return
            is_resume = "resume" in job
            await execute(rt, graphs, int(context.job.id), graph=job["graph"],
                          thread_id=job["thread_id"], principal=job["principal"],
                          input=job.get("input"), resume=job.get("resume"),
                          is_resume=is_resume, retried=context.job.attempts > 0)

    async def requeue_stalled(self, app: Any, queue: JobQueue) -> list[int]:
        """Put the runs of dead workers (heartbeat older than ``stalled_after``) back in the
        queue; one worker at a time (a session advisory lock), so that a job another worker
        took meanwhile is never requeued. Returns their job ids."""
        async with await queue.aconnect() as conn:
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

    async def fire_timers(self, rt: steward.Runtime, app: Any | None) -> list[Wake]:
        """Close the approval requests whose time is up, then wake the threads that need it:
        a job each on PostgreSQL (``app``), a task of this process on SQLite. Returns them."""
        await rt.approvals.aexpire()
        found = await due(rt, self.graphs, skipped=self._skipped)
        for w in found:
            if app is not None:
                await self._defer_wake(app, w)
            elif w.thread_id not in self._waking:
                self._waking[w.thread_id] = asyncio.create_task(self._wake_here(rt, w))
        return found

    async def _defer_wake(self, app: Any, w: Wake) -> None:
        pc = procrastinate_module()
        try:
            await app.configure_task(TASK, lock=w.thread_id, queueing_lock=f"wake:{w.thread_id}"
                                     ).defer_async(graph=w.graph, thread_id=w.thread_id,
                                                   principal=w.principal, wake=w.why)
        except pc.exceptions.AlreadyEnqueued:
            pass  # a wake-up of this thread is queued already

    async def _wake_here(self, rt: steward.Runtime, w: Wake) -> None:
        try:
            await self._wake_one(rt, w)
        finally:
            self._waking.pop(w.thread_id, None)

    async def _wake_one(self, rt: steward.Runtime, w: Wake) -> None:
        try:
            await wake(rt, self.graphs, graph=w.graph, thread_id=w.thread_id,
                       principal=w.principal)
        except ThreadBusy:
            pass  # a live run holds it: it sees what the timer left
        except Exception:
            log.exception("waking thread %s (%s) failed; it is tried again", w.thread_id, w.why)

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
