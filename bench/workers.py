"""``steward worker`` processes on PostgreSQL: throughput, takeover after SIGKILL, a kill storm.

    python bench/workers.py [--quick] [--pg-url URL] [--only throughput,takeover,storm]

Everything is real: a PostgreSQL server (a throwaway one from ``tests/_pg.py`` unless
``--pg-url`` names an admin URL), worker processes started as ``python -m steward.cli worker
--db URL --config langgraph.json --concurrency C ...`` and SIGKILLed with ``os.kill``; runs
are submitted by this process with ``rt.submit`` as one principal, each on its own thread.
The graph is ``bench/_worker_graphs.py``'s ``chain``: 10 nodes in a row that do almost
nothing, the third calling an ``@steward.effect`` that appends its idempotency key to a file
and fsyncs it (the outside world). Each part gets a fresh database, dropped afterwards. Times
of a job's transitions (deferred, started, requeued, succeeded) are read afterwards from
procrastinate's ``procrastinate_events`` table (the server's clock, the same machine's).

throughput
    ``--rounds`` rounds (3), each running N = each of ``--workers`` (1, 2, 4) in turn on a
    fresh database: start N workers with ``--concurrency`` C each (4: with C >= 2 one worker
    keeps its own core busy, with C = 1 it waits on round trips) and wait until all print
    "steward worker ready"; run ``2 * N * C`` untimed warm-up runs; then submit ``--runs``
    runs (200) one after another and wait until all succeeded. A round's rate is runs / (last
    job's ``succeeded`` - first job's ``deferred``), i.e. from the first submit to the last
    run finished, with the submitting inside the window (how long it took is shown).
    Reported: the median rate over the rounds and its range; checkpoints/s (11 per run: the
    input's and one per node); the ratio of the medians to N = 1; and where the CPU went in
    the window (mean over the rounds, in cores): the workers' processes; the PostgreSQL
    server's (its postmaster, found as the parent of a backend, and its children, with the
    time of backends that ended; from ``/proc``, "n/a" if the server is not on this
    machine); this process (submitting and polling); other processes (the rest of the
    machine's busy time: other programs, the kernel's threads; +-0.03 is the noise of the
    sampling); idle; and the CPU milliseconds per run of the workers and of PostgreSQL.
    Each round ends with a baseline: the same runs in this process, ``--concurrency`` at a
    time (asyncio tasks on one ``steward.aopen`` runtime, ``rt.config``, durability "sync"),
    with no queue and no worker process, to show what the queue and the workers add.
takeover
    Two workers (concurrency 1) and ``--kills`` runs (20), one at a time. The first time
    ``n5`` runs on a thread (after the effect in ``n2``) it records its pid and blocks; the
    bench SIGKILLs that worker, the other one, idle, must take the run over, and a new worker
    replaces the dead one before the next run (not timed). Reported (median, p99, min): from
    the SIGKILL to the job put back in the queue (the dead worker's heartbeat went stale, a
    live worker requeued it), to the job started again on the other worker, and to the run
    succeeded. Worker flags: ``--heartbeat`` 0.5 s and ``--stalled-after`` 2 s (the tests'
    settings; the worker's defaults are 1 s and 5 s). The run's effect ran before the kill:
    the bench fails if it ran again.
storm
    ``--storm-workers`` workers (4, concurrency 2) and ``--storm-runs`` runs (100) submitted at
    once, every node sleeping ``--node-sleep`` s (0.1) so that kills land mid-run. A killer
    SIGKILLs a random ready worker every ``--kill-every`` s (1, jittered +-50%, ``--seed``)
    and starts a replacement, until every job succeeded (``--storm-timeout`` s, else the bench
    fails). Then checked: every job succeeded, every thread is idle with ``counter`` 10 and
    its receipt, and the effect file holds exactly one idempotency key per run (a run with no
    line is missing, a run with two keys is a duplicate). The same key written twice is
    counted apart: that is the documented case of a worker killed *during* the effect's call
    (its intent committed, its result not), which the outside world drops by the key.

Any failed check exits with status 1. ``--quick`` is a smoke run with small numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from _common import REPO, PgAdmin, percentile, pg_settings, postgres_server
from _worker_graphs import BLOCK, EFFECT_NODE, NODES, SLEEP, WORLD, builder
from langchain_core.runnables import RunnableConfig

import steward
from steward.jobs import Submitted

GRAPHS = Path(__file__).resolve().parent / "_worker_graphs.py"
ALICE = steward.Principal(id="alice", tenant="acme", roles=frozenset({"support"}))
CHECKPOINTS_PER_RUN = NODES + 1  # the input's, then one per node
TICK = os.sysconf("SC_CLK_TCK")
PARTS = ("throughput", "takeover", "storm")


class BenchFailed(RuntimeError):
    """A check of the bench failed (a run lost, an effect doubled, a timeout)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    workers: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 4
    runs: int = 200
    rounds: int = 3
    kills: int = 20
    storm_runs: int = 100
    storm_workers: int = 4
    storm_concurrency: int = 2
    node_sleep: float = 0.1
    kill_every: float = 1.0
    storm_timeout: float = 180.0
    heartbeat: float = 0.5
    stalled_after: float = 2.0
    seed: int = 0
    quick: bool = False


QUICK = dict(workers=(1, 2), concurrency=2, runs=20, rounds=1, kills=2, storm_runs=12,
             storm_workers=3, node_sleep=0.2, kill_every=1.0, storm_timeout=60.0)


def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# -- CPU time from /proc --------------------------------------------------------------------


def _stat(pid: int | str) -> list[str]:
    """``/proc/PID/stat`` from the field after the command on (state is [0]), or []."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def cpu_of(pid: int) -> float:
    """Seconds of CPU a live process used so far (user + system)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def postmaster_of(url: str) -> int | None:
    """The pid of the PostgreSQL server ``url`` is on, if it runs on this machine (the parent
    of this connection's backend); else None."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        pid = int(row[0]) if row else 0
        try:  # a process of that pid here may be another program's (a server elsewhere)
            ours = Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            ours = False
        fields = _stat(pid) if ours else []
    return int(fields[1]) if fields else None


def postgres_cpu(postmaster: int | None) -> float | None:
    """Seconds of CPU of the server ``postmaster`` and its processes, the backends that ended
    included (their time is in its cutime/cstime); None if it is not on this machine."""
    if postmaster is None:
        return None
    own = _stat(postmaster)
    if not own:
        return None
    total = sum(int(x) for x in own[11:15]) / TICK  # utime stime cutime cstime
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if len(fields) > 12 and fields[1] == str(postmaster):
                total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def machine_busy() -> float:
    """Seconds of CPU spent by the whole machine (all cores, not idle nor iowait)."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


@dataclasses.dataclass
class CpuSample:
    at: float
    workers: float
    postgres: float | None
    me: float
    busy: float

    @classmethod
    def take(cls, pids: Sequence[int], postmaster: int | None) -> CpuSample:
        t = os.times()
        return cls(time.monotonic(), sum(cpu_of(p) for p in pids), postgres_cpu(postmaster),
                   t.user + t.system, machine_busy())


# -- workers ---------------------------------------------------------------------------------


class Workers:
    """``steward worker`` processes on one database, each writing to its own log file."""

    def __init__(self, url: str, where: Path, s: Settings, concurrency: int,
                 **env: str) -> None:
        self.url = url
        self.where = where
        self.s = s
        self.concurrency = concurrency
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self.env = {**os.environ, "PYTHONPATH": path, **env}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.logs: dict[int, Path] = {}
        self.ready: set[int] = set()
        self.started = 0

    def start(self, n: int = 1) -> list[int]:
        """Start ``n`` workers (not waiting for them); their pids."""
        pids = []
        for _ in range(n):
            self.started += 1
            log = self.where / f"worker-{self.started}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "steward.cli", "worker", "--db", self.url,
                     "--config", str(self.where / "langgraph.json"),
                     "--concurrency", str(self.concurrency),
                     "--heartbeat", str(self.s.heartbeat),
                     "--stalled-after", str(self.s.stalled_after)],
                    env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
            self.procs[proc.pid] = proc
            self.logs[proc.pid] = log
            pids.append(proc.pid)
        return pids

    def poll_ready(self) -> set[int]:
        """The workers ready now (they printed "steward worker ready"); raises if one died
        unasked."""
        for pid, proc in self.procs.items():
            if pid in self.ready:
                continue
            if proc.poll() is not None:
                raise BenchFailed(f"worker {pid} exited ({proc.returncode}) before it was "
                                  f"ready:\n{self.logs[pid].read_text()[-3000:]}")
            if "steward worker ready" in self.logs[pid].read_text():
                self.ready.add(pid)
        return self.ready

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.poll_ready()) < len(self.procs):
            if time.monotonic() > deadline:
                raise BenchFailed(f"workers not ready after {timeout:.0f}s")
            time.sleep(0.02)

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        self.procs.pop(pid).wait(10)
        self.ready.discard(pid)

    @property
    def pids(self) -> list[int]:
        return list(self.procs)

    def stop(self) -> None:
        for pid in list(self.procs):
            with contextlib.suppress(ProcessLookupError):
                self.kill(pid)


# -- the database ----------------------------------------------------------------------------


class Db:
    """One fresh database: a runtime to submit with, the job table to watch, the effects."""

    def __init__(self, url: str, where: Path) -> None:
        import psycopg

        self.url = url
        self.where = where
        self.world = where / "world"
        self.world.touch()
        config = where / "langgraph.json"
        config.write_text(json.dumps({"graphs": {"chain": f"{GRAPHS}:builder"}}))
        self.rt = steward.open(url, graphs=str(config))
        self.conn = psycopg.connect(url, autocommit=True)
        self.postmaster = postmaster_of(url)

    def close(self) -> None:
        self.conn.close()
        self.rt.close()

    def submit(self, threads: Sequence[str]) -> list[Submitted]:
        return [self.rt.submit("chain", t, {"counter": 0}, ALICE) for t in threads]

    def statuses(self, jobs: Sequence[int]) -> Counter[str]:
        rows = self.conn.execute("SELECT status::text, count(*) FROM procrastinate_jobs "
                                 "WHERE id = ANY(%s) GROUP BY 1", (list(jobs),)).fetchall()
        return Counter({str(status): int(n) for status, n in rows})

    def wait_succeeded(self, jobs: Sequence[int], timeout: float, every: float = 0.05,
                       tick: Any = None) -> None:
        """Until every job succeeded; BenchFailed if one failed or time is up. ``tick()`` is
        called at each poll (the kill storm's killer)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.statuses(jobs)
            if found["succeeded"] == len(jobs):
                return
            if found["failed"] or found["cancelled"] or found["aborted"]:
                bad = self.conn.execute(
                    "SELECT id, args->>'thread_id', attempts FROM procrastinate_jobs WHERE "
                    "id = ANY(%s) AND status IN ('failed', 'cancelled', 'aborted')",
                    (list(jobs),)).fetchall()
                raise BenchFailed(f"jobs ended badly: {dict(found)}; (job, thread, attempts) "
                                  f"{bad}\n{self.worker_errors()}")
            if time.monotonic() > deadline:
                raise BenchFailed(f"not all {len(jobs)} jobs succeeded after {timeout:.0f}s: "
                                  f"{dict(found)}")
            if tick is not None:
                tick()
            time.sleep(every)

    def worker_errors(self, limit: int = 6000) -> str:
        """What the workers' logs say beyond "ready" and requeueing (errors, tracebacks)."""
        found = []
        for log in sorted(self.where.glob("worker-*.log"), key=lambda p: p.stat().st_mtime):
            lines = [ln for ln in log.read_text(errors="replace").splitlines()
                     if "steward worker ready" not in ln and "stopped beating" not in ln]
            if lines:
                found.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(found)[-limit:]

    def events(self, jobs: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
        """Each job's transitions, in order: (type, epoch seconds)."""
        rows = self.conn.execute(
            "SELECT job_id, type::text, extract(epoch FROM at)::float8 FROM procrastinate_events "
            "WHERE job_id = ANY(%s) ORDER BY id", (list(jobs),)).fetchall()
        found: dict[int, list[tuple[str, float]]] = {j: [] for j in jobs}
        for job, kind, at in rows:
            found[int(job)].append((str(kind), float(at)))
        return found

    def check_runs(self, handles: Sequence[Submitted]) -> Check:
        """Every run done (BenchFailed otherwise) and its effect once: the counts, and what
        went wrong with each run whose effect is missing or was not once."""
        lines = [ln.split() for ln in self.world.read_text().splitlines() if ln.strip()]
        keys: dict[str, list[tuple[str, str]]] = {}
        for thread, key, pid in lines:
            keys.setdefault(thread, []).append((key, pid))
        check = Check()
        for h in handles:
            status = self.rt.run_status(h, ALICE)
            values = status["values"] or {}
            if (status["job"], status["thread"], values.get("counter")) != (
                    "succeeded", "idle", NODES):
                raise BenchFailed(f"run {h.thread_id} not done: {status}")
            mine = keys.get(h.thread_id, [])
            distinct = {key for key, _ in mine}
            check.missing += not distinct
            check.duplicated += max(0, len(distinct) - 1)
            check.repeats += len(mine) - len(distinct)
            if distinct and values.get("receipt") not in distinct:
                raise BenchFailed(f"run {h.thread_id}: receipt {values.get('receipt')!r} is "
                                  f"none of its effect's keys {sorted(distinct)}")
            if len(mine) != 1:
                check.details.append(self.explain(h, mine))
        return check

    def explain(self, h: Submitted, effects: list[tuple[str, str]]) -> str:
        """A run's effects (key, pid), its job's attempts and events, its checkpoints."""
        who: RunnableConfig = {"configurable": {"thread_id": h.thread_id, "principal": ALICE}}
        graph = builder.compile(checkpointer=self.rt.checkpointer)
        history = [f"{(snap.metadata or {}).get('step')}/{(snap.metadata or {}).get('source')}"
                   f"/job {(snap.metadata or {}).get('steward_job')}/next {list(snap.next)}"
                   for snap in reversed(list(graph.get_state_history(who)))]
        row = self.conn.execute("SELECT attempts, worker_id FROM procrastinate_jobs "
                                "WHERE id = %s", (h.job_id,)).fetchone()
        events = [f"{kind}@{at:.3f}" for kind, at in self.events([h.job_id])[h.job_id]]
        return (f"run {h.thread_id} (job {h.job_id}, attempts/worker {row}): effects "
                f"(key, pid) {effects}; events {events}; checkpoints {history}")


@dataclasses.dataclass
class Check:
    missing: int = 0
    duplicated: int = 0
    repeats: int = 0
    details: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def database(server: PgAdmin, tmp: Path, name: str) -> Iterator[Db]:
    url = server.create_database(f"bench_workers_{name}")
    where = tmp / name
    where.mkdir()
    db = Db(url, where)
    try:
        yield db
    finally:
        db.close()
        server.drop_database(url)


# -- throughput ------------------------------------------------------------------------------


@dataclasses.dataclass
class Throughput:
    workers: int
    runs: int
    seconds: float
    submit_seconds: float
    cpu: dict[str, float | None]  # share of one core, per group, over the window

    @property
    def rate(self) -> float:
        return self.runs / self.seconds


def throughput(server: PgAdmin, tmp: Path, s: Settings, n: int, round_: int) -> Throughput:
    with database(server, tmp, f"tp{n}_{round_}") as db:
        pool = Workers(db.url, db.where, s, s.concurrency, **{WORLD: str(db.world)})
        try:
            pool.start(n)
            pool.wait_ready()
            warm = db.submit([f"warm-{i}" for i in range(2 * n * s.concurrency)])
            db.wait_succeeded([h.job_id for h in warm], timeout=120)
            before = CpuSample.take(pool.pids, db.postmaster)
            t0 = time.monotonic()
            handles = db.submit([f"run-{i}" for i in range(s.runs)])
            submit_seconds = time.monotonic() - t0
            jobs = [h.job_id for h in handles]
            db.wait_succeeded(jobs, timeout=600)
            after = CpuSample.take(pool.pids, db.postmaster)
        finally:
            pool.stop()
        events = db.events(jobs)
        first = min(at for evs in events.values() for kind, at in evs if kind == "deferred")
        last = max(at for evs in events.values() for kind, at in evs if kind == "succeeded")
        check = db.check_runs([*warm, *handles])
        if check.missing or check.duplicated or check.repeats:
            raise BenchFailed(f"throughput with {n} workers: {check.missing} effects missing, "
                              f"{check.duplicated} duplicated, {check.repeats} repeated:\n"
                              + "\n".join(check.details))
    wall = after.at - before.at
    pg = (None if before.postgres is None or after.postgres is None
          else (after.postgres - before.postgres) / wall)
    workers = (after.workers - before.workers) / wall
    me = (after.me - before.me) / wall
    machine = (after.busy - before.busy) / wall
    cpu = {"workers": workers, "postgres": pg, "bench": me, "machine": machine,
           "other": machine - workers - (pg or 0.0) - me}
    return Throughput(n, s.runs, last - first, submit_seconds, cpu)


def in_process(server: PgAdmin, tmp: Path, s: Settings, round_: int) -> Throughput:
    """The baseline: the same runs in this process, no queue, ``s.concurrency`` at a time
    (asyncio tasks on one ``steward.aopen`` runtime, ``rt.config`` and durability "sync", as
    a worker runs them)."""
    with database(server, tmp, f"tp0_{round_}") as db:
        os.environ[WORLD] = str(db.world)
        try:
            seconds, before, after = asyncio.run(_in_process(db, s))
        finally:
            del os.environ[WORLD]
        keys: dict[str, list[str]] = {}
        for line in db.world.read_text().splitlines():
            thread, key, _ = line.split()
            keys.setdefault(thread, []).append(key)
        if len(keys) != s.runs + 2 * s.concurrency or any(len(k) != 1 for k in keys.values()):
            raise BenchFailed(f"in-process runs: {len(keys)} threads with effects, "
                              f"{sum(len(k) != 1 for k in keys.values())} not once")
    wall = after.at - before.at
    pg = (None if before.postgres is None or after.postgres is None
          else (after.postgres - before.postgres) / wall)
    me = (after.me - before.me) / wall
    machine = (after.busy - before.busy) / wall
    cpu = {"workers": me, "postgres": pg, "bench": 0.0, "machine": machine,
           "other": machine - me - (pg or 0.0)}
    return Throughput(0, s.runs, seconds, 0.0, cpu)


async def _in_process(db: Db, s: Settings) -> tuple[float, CpuSample, CpuSample]:
    async with steward.aopen(db.url) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer, store=rt.store)

        async def runs(threads: list[str]) -> None:
            async def one() -> None:
                while threads:
                    await graph.ainvoke({"counter": 0}, rt.config(threads.pop(), ALICE),
                                        durability="sync")
            await asyncio.gather(*(one() for _ in range(s.concurrency)))

        await runs([f"warm-{i}" for i in range(2 * s.concurrency)])
        before = CpuSample.take([], db.postmaster)
        t0 = time.monotonic()
        await runs([f"run-{i}" for i in range(s.runs)])
        seconds = time.monotonic() - t0
        after = CpuSample.take([], db.postmaster)
    return seconds, before, after


def throughput_table(results: dict[int, list[Throughput]], s: Settings) -> None:
    cores = float(os.cpu_count() or 1)
    rate = {n: statistics.median(r.rate for r in rs) for n, rs in results.items()}
    base = rate.get(1)
    print(f"\nThroughput: {s.runs} runs of the 10-node chain per round, {s.rounds} round(s), "
          f"each worker --concurrency {s.concurrency}; from the first submit to the last run "
          "succeeded")
    print("| workers | runs/s (median) | min-max | checkpoints/s | / 1 worker | submitting | "
          "CPU: workers | postgres | bench | other processes | idle | CPU ms per run: "
          "workers | postgres |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: |")

    def mean(rs: list[Throughput], key: str, per_run: bool = False) -> str:
        values = [r.cpu[key] for r in rs]
        found = [v / r.rate * 1000 if per_run else v for v, r in zip(values, rs, strict=True)
                 if v is not None]
        if len(found) < len(values):
            return "n/a"
        return f"{statistics.fmean(found):.1f}" if per_run else f"{statistics.fmean(found):.2f}"

    for n, rs in results.items():
        ratio = f"{rate[n] / base:.2f}x" if base else "n/a"
        idle = cores - statistics.fmean(r.cpu["machine"] or 0.0 for r in rs)
        label = str(n) if n else f"none: in-process, {s.concurrency} at a time"
        print(f"| {label} | {rate[n]:.1f} | {min(r.rate for r in rs):.1f}-"
              f"{max(r.rate for r in rs):.1f} | {rate[n] * CHECKPOINTS_PER_RUN:.0f} | {ratio} | "
              f"{statistics.fmean(r.submit_seconds for r in rs):.2f} s | {mean(rs, 'workers')} | "
              f"{mean(rs, 'postgres')} | {mean(rs, 'bench')} | {mean(rs, 'other')} | "
              f"{idle:.2f} | {mean(rs, 'workers', True)} | {mean(rs, 'postgres', True)} |")
    print(f"(CPU columns: cores' worth over the timed window, mean of the rounds; this machine "
          f"has {os.cpu_count()} cores, shared by the workers, PostgreSQL and the bench; "
          "\"submitting\": how long this process took to submit the runs, inside the window; "
          "the in-process row runs the same graph in this process with rt.config and "
          "durability=\"sync\", no queue and no worker, its CPU under \"workers\")")


# -- takeover --------------------------------------------------------------------------------


@dataclasses.dataclass
class Takeover:
    requeued: float
    restarted: float
    finished: float


def takeover(server: PgAdmin, tmp: Path, s: Settings) -> list[Takeover]:
    samples = []
    with database(server, tmp, "takeover") as db:
        block = db.where / "blocked"
        block.mkdir()
        pool = Workers(db.url, db.where, s, 1, **{WORLD: str(db.world), BLOCK: str(block)})
        handles = []
        try:
            pool.start(2)
            pool.wait_ready()
            for k in range(s.kills):
                thread = f"kill-{k}"
                [handle] = db.submit([thread])
                handles.append(handle)
                marker = block / thread
                deadline = time.monotonic() + 60
                while not marker.exists() or not marker.read_text():
                    if time.monotonic() > deadline:
                        raise BenchFailed(f"run {thread} never reached its blocking node")
                    time.sleep(0.002)
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed = time.time()
                pool.procs.pop(pid).wait(10)
                pool.ready.discard(pid)
                db.wait_succeeded([handle.job_id], timeout=60, every=0.01)
                kinds = [(kind, at - killed) for kind, at in db.events([handle.job_id])[
                    handle.job_id] if at >= killed - 0.001]
                requeued = next(t for kind, t in kinds if kind == "deferred_for_retry")
                restarted = next(t for kind, t in kinds if kind == "started")
                finished = next(t for kind, t in kinds if kind == "succeeded")
                samples.append(Takeover(requeued, restarted, finished))
                check = db.check_runs([handle])
                if check.details:
                    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}"
                                     for log in sorted(db.where.glob("worker-*.log")))
                    raise BenchFailed(f"takeover {k + 1} (killed worker {pid}): "
                                      f"{check.details[0]}\n{logs}")
                say(f"takeover {k + 1}/{s.kills}: requeued {requeued * 1000:.0f} ms, "
                    f"restarted {restarted * 1000:.0f} ms, finished {finished * 1000:.0f} ms")
                pool.start(1)  # the replacement, ready before the next run
                pool.wait_ready()
        finally:
            pool.stop()
        check = db.check_runs(handles)
        if check.missing or check.duplicated or check.repeats:
            raise BenchFailed(f"takeover: {check.missing} effects missing, {check.duplicated} "
                              f"duplicated, {check.repeats} repeated (the effect ran before the "
                              "kill: it should not run again):\n" + "\n".join(check.details))
    return samples


def takeover_table(samples: list[Takeover], s: Settings) -> None:
    print(f"\nTakeover: {len(samples)} SIGKILLs of the worker running a run (inside its 6th "
          f"node, after its effect), another worker idle; --heartbeat {s.heartbeat:g} "
          f"--stalled-after {s.stalled_after:g} (defaults 1 and 5)")
    note = " (with this few kills p99 is the max)" if len(samples) < 100 else ""
    print(f"| from the SIGKILL until | median | p99{note} | min |")
    print("| --- | ---: | ---: | ---: |")
    for field, what in (("requeued", "the job is back in the queue"),
                        ("restarted", "another worker started it"),
                        ("finished", "the run succeeded on it")):
        ms = [getattr(x, field) * 1000 for x in samples]
        print(f"| {what} | {statistics.median(ms):.0f} ms | {percentile(ms, 99):.0f} ms | "
              f"{min(ms):.0f} ms |")
    gap = statistics.median(x.restarted - x.requeued for x in samples) * 1000
    print(f"(back in the queue -> started: median {gap:.0f} ms, the idle worker's next poll of "
          "the queue, every second: putting a job back sends no notification; every run ended "
          "with counter 10 and its effect once: 0 missing, 0 duplicated)")


# -- kill storm ------------------------------------------------------------------------------


@dataclasses.dataclass
class Storm:
    runs: int
    seconds: float
    kills: int
    retried_jobs: int
    requeues: int
    check: Check


def storm(server: PgAdmin, tmp: Path, s: Settings) -> Storm:
    rng = random.Random(s.seed)
    with database(server, tmp, "storm") as db:
        pool = Workers(db.url, db.where, s, s.storm_concurrency,
                       **{WORLD: str(db.world), SLEEP: str(s.node_sleep)})
        kills = 0
        try:
            pool.start(s.storm_workers)
            pool.wait_ready()
            started = time.monotonic()
            handles = db.submit([f"storm-{i}" for i in range(s.storm_runs)])
            jobs = [h.job_id for h in handles]
            next_kill = started + s.kill_every * rng.uniform(0.5, 1.5)

            def killer() -> None:
                nonlocal next_kill, kills
                if time.monotonic() < next_kill:
                    return
                ready = sorted(pool.poll_ready())
                if not ready:
                    return
                victim = rng.choice(ready)
                pool.kill(victim)
                kills += 1
                pool.start(1)
                next_kill = time.monotonic() + s.kill_every * rng.uniform(0.5, 1.5)
                done = db.statuses(jobs)["succeeded"]
                say(f"storm: killed worker {victim} ({kills} kills, {done}/{len(jobs)} runs "
                    "done)")

            db.wait_succeeded(jobs, timeout=s.storm_timeout, every=0.05, tick=killer)
            seconds = time.monotonic() - started
        finally:
            pool.stop()
        events = db.events(jobs)
        requeues = sum(kind == "deferred_for_retry" for evs in events.values() for kind, _ in evs)
        retried = sum(any(kind == "deferred_for_retry" for kind, _ in evs)
                      for evs in events.values())
        check = db.check_runs(handles)
    if not kills:
        raise BenchFailed(f"the storm ended in {seconds:.1f}s before any SIGKILL: raise "
                          "--storm-runs or --node-sleep, or lower --kill-every")
    return Storm(len(handles), seconds, kills, retried, requeues, check)


def storm_table(r: Storm, s: Settings) -> None:
    print(f"\nKill storm: {r.runs} runs submitted at once to {s.storm_workers} workers "
          f"(--concurrency {s.storm_concurrency}, every node sleeping {s.node_sleep:g} s); a "
          f"random worker SIGKILLed every ~{s.kill_every:g} s and replaced (--seed {s.seed})")
    print("| runs done | time | SIGKILLs | runs taken over | requeues | effects missing | "
          "effects duplicated | same-key repeats |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    c = r.check
    print(f"| {r.runs}/{r.runs} | {r.seconds:.1f} s | {r.kills} | {r.retried_jobs} | "
          f"{r.requeues} | {c.missing} | {c.duplicated} | {c.repeats} |")
    print(f"kill storm: {r.runs}/{r.runs} runs done; effects: {c.missing} missing, "
          f"{c.duplicated} duplicated ({c.repeats} same-key repeats, dropped by the key)")
    for line in c.details:
        print("  " + line)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    opt = parser.add_argument
    opt("--quick", action="store_true", help="a smoke run with small numbers (under a minute)")
    opt("--only", default=",".join(PARTS), help=f"which parts, of {','.join(PARTS)}")
    opt("--workers", help="worker counts for throughput (1,2,4; quick 1,2)")
    opt("--concurrency", type=int, help="--concurrency of each worker for throughput (4; "
        "quick 2)")
    opt("--runs", type=int, help="timed runs per worker count and round (200; quick 20)")
    opt("--rounds", type=int, help="rounds of the throughput part (3; quick 1)")
    opt("--kills", type=int, help="takeover repetitions (20; quick 2)")
    opt("--storm-runs", type=int, help="runs in the kill storm (100; quick 12)")
    opt("--storm-workers", type=int, help="workers in the kill storm (4; quick 3)")
    opt("--storm-concurrency", type=int, help="--concurrency of the storm's workers (2)")
    opt("--node-sleep", type=float, help="seconds each node sleeps in the storm (0.1; quick "
        "0.2)")
    opt("--kill-every", type=float, help="mean seconds between storm SIGKILLs (1)")
    opt("--storm-timeout", type=float, help="seconds the storm may take (180; quick 60)")
    opt("--heartbeat", type=float, help="the workers' --heartbeat (0.5)")
    opt("--stalled-after", type=float, help="the workers' --stalled-after (2)")
    opt("--seed", type=int, help="seed of the storm's killer (0)")
    opt("--pg-url", default=None, help="admin URL of a PostgreSQL server to create databases "
        "on (default: start a throwaway server with tests/_pg.py)")
    opt("--tmpdir", default=None, help="directory for the effect files and worker logs")
    args = parser.parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    if not only or set(only) - set(PARTS):
        parser.error(f"--only takes some of {','.join(PARTS)}")
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    if args.workers:
        try:
            values["workers"] = tuple(int(x) for x in args.workers.split(","))
        except ValueError:
            parser.error(f"--workers takes comma-separated counts, got {args.workers!r}")
    for field in ("concurrency", "runs", "rounds", "kills", "storm_runs", "storm_workers",
                  "storm_concurrency", "node_sleep", "kill_every", "storm_timeout",
                  "heartbeat", "stalled_after", "seed"):
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    s = Settings(quick=args.quick, **values)
    if min(s.workers) < 1 or s.concurrency < 1 or s.runs < 1 or s.rounds < 1 or s.kills < 1 \
            or s.storm_runs < 1 or s.storm_workers < 2:
        parser.error("counts must be >= 1 (--storm-workers >= 2)")
    args.only = only
    return args, s


def main(argv: list[str] | None = None) -> int:
    args, s = parse_args(argv)
    began = time.monotonic()
    title = "steward worker on PostgreSQL"
    if s.quick:
        title += " (--quick: small numbers, not representative)"
    try:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="steward-bench-workers-", dir=args.tmpdir)))
            say("postgres: " + ("connecting" if args.pg_url else "starting a throwaway server"))
            server = stack.enter_context(postgres_server(args.pg_url))
            probe = server.create_database("bench_workers_probe")
            conf = pg_settings(probe)
            server.drop_database(probe)
            print(f"{title}: PostgreSQL {conf['server_version'].split()[0]} (fsync "
                  f"{conf['fsync']}, synchronous_commit {conf['synchronous_commit']}); "
                  f"{os.cpu_count()} CPU cores on this machine, shared by the workers, the "
                  f"database server and this process; load average at start "
                  f"{os.getloadavg()[0]:.2f}; effect in node n{EFFECT_NODE} of {NODES}",
                  flush=True)
            if "throughput" in args.only:
                results: dict[int, list[Throughput]] = {n: [] for n in (*s.workers, 0)}
                for r in range(s.rounds):  # interleaved: every count once per round
                    for n in s.workers:
                        say(f"throughput: round {r + 1}/{s.rounds}, {n} worker(s)")
                        results[n].append(throughput(server, tmp, s, n, r))
                    say(f"throughput: round {r + 1}/{s.rounds}, in-process baseline")
                    results[0].append(in_process(server, tmp, s, r))
                throughput_table(results, s)
            if "takeover" in args.only:
                takeover_table(takeover(server, tmp, s), s)
            if "storm" in args.only:
                result = storm(server, tmp, s)
                storm_table(result, s)
                if result.check.missing or result.check.duplicated:
                    raise BenchFailed(f"kill storm: {result.check.missing} effects missing, "
                                      f"{result.check.duplicated} duplicated")
    except BenchFailed as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    print(f"\ntotal {time.monotonic() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
