"""How late a durable timer fires (issue #16): from an approval's ``expires_at`` to its node
running again, with nobody touching the thread.

This process starts ``--threads`` runs of ``tests/_timed.py``'s graph (each waits on a
manager's approval expiring ``--spread`` seconds apart, on "reject"), then one
``steward worker`` process (default flags: it looks for due timers every second) and waits.
The worker closes each request when its time is up and wakes its thread; the node, learning
the request expired, marks the time it ran. Reported per backend: lateness (median, p90,
p99, max) from ``expires_at`` to that mark. The bound the issue sets is 5 s.

    python bench/timers.py [--threads 40] [--spread 0.25] [--timers-every 1.0]
                           [--pg-url URL | --no-postgres] [--tmpdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, postgres_server

import steward
from steward.jobs.graphs import Graphs, bind

ALICE = steward.Principal(id="alice", tenant="acme", roles=frozenset({"support"}))
FIRST = 3.0  # seconds from the start until the first request expires (the worker starts)


def _graph(rt: steward.Runtime, config: Path) -> Any:
    return bind(Graphs.locate(config).target("timed"), rt.checkpointer, rt.store)


def run(url: str, tmp: Path, threads: int, spread: float, every: float) -> list[float]:
    """Lateness in seconds of each of ``threads`` timers on ``url``."""
    config, marks = tmp / "langgraph.json", tmp / f"marks-{time.monotonic_ns()}"
    config.write_text(json.dumps({"graphs": {"timed": str(REPO / "tests" / "_timed.py:builder")}}))
    marks.touch()
    env = {**os.environ, "STEWARD_TEST_MARKS": str(marks),
           "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    expires: dict[str, float] = {}
    with steward.open(url) as rt:
        graph = _graph(rt, config)
        start = time.time()
        for i in range(threads):
            # Each request expires at start + FIRST + i * spread.
            os.environ["STEWARD_TEST_MARKS"] = str(marks)
            os.environ["STEWARD_TEST_EXPIRES_IN"] = str(start + FIRST + i * spread - time.time())
            out = graph.invoke({"amount": str(i)}, rt.config(f"T{i}", ALICE, graph_id="timed"))
            request = out["__interrupt__"][0].value
            expires[f"T{i}"] = dt.datetime.fromisoformat(request["expires_at"]).timestamp()
        if time.time() > start + FIRST:
            raise RuntimeError(f"starting {threads} runs took longer than {FIRST} s: fewer "
                               "--threads")
    worker = subprocess.Popen(
        [sys.executable, "-m", "steward.cli", "worker", "--db", url, "--config", str(config),
         "--timers-every", str(every)], env=env, cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = max(expires.values()) + 30
        fired: dict[str, float] = {}
        while len(fired) < threads:
            if time.time() > deadline or worker.poll() is not None:
                raise RuntimeError(f"{threads - len(fired)} timers did not fire")
            for line in marks.read_text().splitlines():
                kind, thread, *rest = line.split()  # "decided T3 expired <pid> <time>"
                if kind == "decided" and rest[0] == "expired":
                    fired.setdefault(thread, float(rest[2]))
            time.sleep(0.1)
        return [fired[t] - expires[t] for t in expires]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()


def report(name: str, late: list[float], every: float) -> None:
    ms = sorted(x * 1000 for x in late)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    print(f"{name}: timer lateness from expires_at to the node running: median "
          f"{statistics.median(ms):.0f} ms, p90 {pct(0.9):.0f} ms, p99 {pct(0.99):.0f} ms, max "
          f"{ms[-1]:.0f} ms ({len(ms)} timers; the worker looks every {every:g} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=40)
    parser.add_argument("--spread", type=float, default=0.25,
                        help="seconds between two timers' expires_at")
    parser.add_argument("--timers-every", type=float, default=1.0)
    parser.add_argument("--pg-url", default=None, help="an admin URL of a PostgreSQL server "
                        "(default: start a throwaway server with tests/_pg.py)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as scratch:
        tmp = Path(scratch)
        report("sqlite", run(f"sqlite:///{tmp}/timers.db", tmp, args.threads, args.spread,
                             args.timers_every), args.timers_every)
        if not args.no_postgres:
            with postgres_server(args.pg_url) as server:
                url = server.create_database()
                try:
                    report("postgres", run(url, tmp, args.threads, args.spread,
                                           args.timers_every), args.timers_every)
                finally:
                    server.drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
