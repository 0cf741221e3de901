"""Where a step's time goes under ``rt.config`` (identity, lease, audit), durability "sync".

Run it with ``python bench/profile.py`` (``--no-postgres``, ``--runs``, ``--pg-url``). The
10-node chain of ``bench/runtime.py`` runs ``--runs`` times on a new thread each, with the
saver's parts timed in place (wall clock, wrapped around the calls; the wrappers cost a few
microseconds of their own), and the same graph on LangGraph's ``InMemorySaver`` interleaved
with it. Per step (a run stores 12 checkpoints):

run
    the wall time of ``invoke`` over 12.
LangGraph alone
    the same graph on ``InMemorySaver`` with durability "sync": LangGraph's own work, its
    thread hand-offs to the background writer included.
checkpoint write
    ``StewardSaver.put`` as LangGraph waits for it (durability "sync" waits before the next
    step), split into encoding (checkpoint row, values, the audit events' chain), the SQL
    statements and the commit. SQLite: the ``COMMIT`` (its WAL flush) is timed on its own.
    PostgreSQL: a step's write is one statement whose commit is inside it, so "SQL + commit"
    is that statement's round trip; the floor below says what a bare commit costs.
task writes
    ``put_writes``: under ``rt.config`` a task's writes are held and ride with the next
    checkpoint (``steward/checkpointers/riding.py``), so this is their encoding only.
callbacks
    the audit and lease handlers' own time on LangGraph's thread (the lease's database work
    happens once per run and is shown per step).
floor
    a bare durable commit on the same database (``bench/_scenarios.py``'s floors).

What is left over (run minus the parts) is the thread hand-offs and waits for the GIL between
LangGraph's thread and its writer's, which neither side controls.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import CHAIN_START, chain_graph, postgres_server
from _scenarios import postgres_floor, sqlite_floor
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.table import Table

import steward
from steward.audit.handler import AuditCallbackHandler
from steward.audit.log import AuditLog
from steward.checkpointers.encoding import Encoder
from steward.checkpointers.lease import LeaseHandler
from steward.checkpointers.saver import StewardSaver

STEPS = 12  # checkpoints a run of the 10-node chain stores
ALICE = steward.Principal(id="alice", tenant="acme", roles={"support"})

Clock = dict[str, float]


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def timed(clock: Clock, targets: list[tuple[Any, str, str]]) -> Iterator[None]:
    """Wrap ``owner.name`` so that its wall time adds up in ``clock[label]``."""
    with contextlib.ExitStack() as stack:
        for owner, name, label in targets:
            original = getattr(owner, name)

            def wrapper(*args: Any, _f: Callable[..., Any] = original, _l: str = label,
                        **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    clock[_l] += time.perf_counter() - start

            stack.enter_context(_patched(owner, name, wrapper))
        yield


class _Timed:
    """A sqlite3 connection whose COMMITs and other statements are timed."""

    def __init__(self, conn: Any, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    def execute(self, sql: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self._clock["commit" if sql == "COMMIT" else "sql"] += time.perf_counter() - start

    def executemany(self, sql: str, rows: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._conn.executemany(sql, rows)
        finally:
            self._clock["sql"] += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def profile(url: str, runs: int, floor_us: float) -> dict[str, float]:
    clock: Clock = defaultdict(float)
    memory = chain_graph(InMemorySaver())
    with contextlib.ExitStack() as stack:
        rt = stack.enter_context(steward.open(url))
        graph = chain_graph(rt.checkpointer)
        driver: Any = rt.checkpointer.driver
        driver = getattr(driver, "inner", driver)  # the runtime's wrapper (audit.refusals)
        targets: list[tuple[Any, str, str]] = [
            (StewardSaver, "put", "put"), (StewardSaver, "put_writes", "put_writes"),

            (Encoder, "checkpoint_row", "encode"), (Encoder, "plan_blob", "encode"),
            (AuditLog, "_chained", "encode"),  # both dialects chain events here
            (AuditCallbackHandler, "on_chain_start", "callbacks"),
            (AuditCallbackHandler, "on_chain_end", "callbacks"),
            (LeaseHandler, "on_chain_start", "lease"), (LeaseHandler, "on_chain_end", "lease"),
        ]
        if driver.dialect == "sqlite":
            driver.conn = _Timed(driver.conn, clock)
            driver.fast = _Timed(driver.fast, clock)
        else:
            import psycopg

            # The checkpoint's one statement (commit included), only while put runs (the
            # lease's one-statement take and release are the lease's).
            original = psycopg.Connection.execute
            inside = threading.local()
            put = StewardSaver.put

            def in_put(self: Any, *args: Any, **kwargs: Any) -> Any:
                inside.put = True
                try:
                    return put(self, *args, **kwargs)
                finally:
                    inside.put = False

            def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original(self, *args, **kwargs)
                finally:
                    if getattr(inside, "put", False):
                        clock["statement"] += time.perf_counter() - start

            stack.enter_context(_patched(psycopg.Connection, "execute", execute))
            stack.enter_context(_patched(StewardSaver, "put", in_put))
        for i in range(5):
            graph.invoke(CHAIN_START, rt.config(f"warm-{i}", ALICE, durability="sync"))
            memory.invoke(CHAIN_START, {"configurable": {"thread_id": f"warm-{i}"}},
                          durability="sync")
        lone: list[float] = []
        clock.clear()  # what the warm-up runs added
        with timed(clock, targets):
            for i in range(runs):
                start = time.perf_counter()
                graph.invoke(CHAIN_START, rt.config(f"run-{i}", ALICE, durability="sync"))
                clock["run"] += time.perf_counter() - start
                start = time.perf_counter()
                memory.invoke(CHAIN_START, {"configurable": {"thread_id": f"run-{i}"}},
                              durability="sync")
                lone.append(time.perf_counter() - start)
    per = {k: v / runs / STEPS * 1e6 for k, v in clock.items()}
    per["langgraph"] = statistics.mean(lone) / STEPS * 1e6
    per["floor"] = floor_us
    return per


def table(backend: str, per: dict[str, float]) -> Table:
    t = Table(title=f"{backend}: one step under rt.config, durability \"sync\" (µs per step)")
    t.add_column("part", no_wrap=True)
    t.add_column("µs/step", justify="right")
    t.add_column("of the run", justify="right")
    run = per["run"]

    def row(label: str, value: float) -> None:
        t.add_row(label, f"{value:,.0f}", f"{value / run:.0%}")

    encode = per.get("encode", 0.0)
    write = per.get("put", 0.0)
    row("run (invoke ÷ 12)", run)
    row("  LangGraph alone (InMemorySaver, sync)", per["langgraph"])
    row("  checkpoint write (put, waited for)", write)
    row("    encoding (checkpoint, values, audit chain)", encode)
    if "commit" in per:
        row("    SQL statements (in SQLite)", per.get("sql", 0.0))
        row("    commit (its WAL flush)", per["commit"])
        row("    the rest of put (Python, locks)",
            max(0.0, write - encode - per.get("sql", 0.0) - per["commit"]))
    else:
        statement = per.get("statement", 0.0)
        row("    SQL + commit (the statement's round trip)", statement)
        row("    the rest of put (Python)", max(0.0, write - encode - statement))
    row("  task writes held for the next checkpoint (put_writes)", per.get("put_writes", 0.0))
    row("  audit handler (events gathered)", per.get("callbacks", 0.0))
    row("  lease (taken and given back, per run ÷ 12)", per.get("lease", 0.0))
    accounted = per["langgraph"] + write + per.get("put_writes", 0.0) \
        + per.get("callbacks", 0.0) + per.get("lease", 0.0)
    row("  left: hand-offs between LangGraph's threads", max(0.0, run - accounted))
    row("floor: one bare durable commit", per["floor"])
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        floor = sqlite_floor(Path(tmp) / "floor.db", 300)
        console.print(table("SQLite", profile(f"sqlite:///{tmp}/steward.db", args.runs,
                                              floor.mean_us)))
    if not args.no_postgres:
        with postgres_server(args.pg_url) as server:
            url = server.create_database("profile")
            floor_url = server.create_database("floor")
            try:
                pg_floor = postgres_floor(floor_url, 300)
                console.print(table("PostgreSQL", profile(url, args.runs, pg_floor.mean_us)))
            finally:
                server.drop_database(url)
                server.drop_database(floor_url)


if __name__ == "__main__":
    sys.exit(main())
