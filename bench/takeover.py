"""How fast a thread is taken over after the process running it is killed (issue #16).

A worker process (``tests/_worker.py``) runs a thread under ``rt.config`` and blocks inside
its second node, holding the thread's lease (``lease_ttl`` 30 s); this process SIGKILLs it,
then resumes the thread with ``rt.resume`` as fast as it can. Reported per backend: the time
from the kill to the thread reading ``stalled``, and to ``rt.resume`` having finished the
run (median, p90 and max over ``--kills`` kills). Without liveness the resume would wait out
the lease: 30 s.

    python bench/takeover.py [--kills 20] [--pg-url URL | --no-postgres] [--tmpdir DIR]
"""

from __future__ import annotations

import argparse
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from _common import REPO, postgres_server
from langgraph.graph import END, START, StateGraph

import steward

WORKER = REPO / "tests" / "_worker.py"
ALICE = steward.Principal(id="alice", tenant="acme", roles=frozenset({"support"}))
LEASE_TTL = 30.0


class State(TypedDict, total=False):  # tests/_worker.py's
    items: Annotated[list[str], operator.add]


def _graph(rt: steward.Runtime) -> Any:
    builder = StateGraph(State)
    builder.add_node("first", lambda s: {"items": ["first"]})
    builder.add_node("hang", lambda s: {"items": ["taken over"]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "hang")
    builder.add_edge("hang", END)
    return builder.compile(checkpointer=rt.checkpointer)


def once(url: str, tid: str, tmp: Path) -> tuple[float, float]:
    """Kill a run of ``tid`` mid-way; seconds until the thread reads stalled, and until
    ``rt.resume`` finished it."""
    ready = tmp / f"{tid}.ready"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(WORKER), url, tid, str(LEASE_TTL), str(ready)],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError("the worker died before it held the lease")
            time.sleep(0.01)
        with steward.open(url) as rt:
            graph = _graph(rt)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed = time.perf_counter()
            deadline = killed + 60
            while (rt.checkpointer.thread_info(tid, ALICE) or {}).get("status") != "stalled":
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"thread {tid} never read stalled after the kill")
                time.sleep(0.001)
            stalled = time.perf_counter() - killed
            out = rt.resume(tid, ALICE, graph=graph)
            done = time.perf_counter() - killed
            assert out["items"] == ["first", "taken over"], out
        return stalled, done
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def report(name: str, samples: list[tuple[float, float]]) -> None:
    for i, what in enumerate(("reads stalled", "resumed and finished")):
        ms = sorted(s[i] * 1000 for s in samples)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(f"{name}: {what} after the kill: median {statistics.median(ms):.0f} ms, "
              f"p90 {p90:.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} kills; lease_ttl "
              f"{LEASE_TTL:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--pg-url", default=None, help="an admin URL of a PostgreSQL server "
                        "(default: start a throwaway server with tests/_pg.py)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as scratch:
        tmp = Path(scratch)
        url = f"sqlite:///{tmp}/takeover.db"
        report("sqlite", [once(url, f"T{i}", tmp) for i in range(args.kills)])
        if not args.no_postgres:
            with postgres_server(args.pg_url) as server:
                url = server.create_database()
                try:
                    report("postgres", [once(url, f"T{i}", tmp) for i in range(args.kills)])
                finally:
                    server.drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
