"""Runtime benchmark: the runtime a user runs, ``rt.config(...)`` and all, against the stock savers.

Run it with ``python bench/runtime.py`` (also part of ``make bench``; ``--help`` lists the
options; ``--only steps,trips`` runs a subset, ``--quick`` is a smoke run with small numbers).
For issue 17: the whole runtime faster than the stock savers it replaces.

``bench/checkpointer.py`` measures Steward's saver alone. Here Steward's side is what an
application runs: ``graph.invoke(input, rt.config(thread_id, alice, durability=d))`` with
``alice = Principal(id="alice", tenant="acme", roles={"support"})``, so that every run takes
and gives back the thread's lease, binds the thread to alice's tenant and writes its audit
events (run start and end, each node's start and end) with its checkpoints: everything on.

What is compared
----------------
memory
    LangGraph's ``InMemorySaver``: the graph's own cost with no storage at all (a reference).
stock
    SQLite: ``langgraph.checkpoint.sqlite.SqliteSaver`` on a fresh file with
    ``journal_mode=WAL`` and ``synchronous=FULL`` (Steward's default durability): every commit
    is flushed, whatever the run's durability.
    PostgreSQL: ``PostgresSaver.from_conn_string(url)`` + ``setup()``, one connection (it holds
    a lock around every call anyway); for async runs ``AsyncPostgresSaver(conn=pool)`` on a
    ``psycopg_pool.AsyncConnectionPool`` of ``--concurrency`` connections (``autocommit``,
    ``prepare_threshold=0``, ``dict_row``, as its documentation asks). Configs are
    ``{"configurable": {"thread_id": tid}}`` and the durability goes to ``invoke``.
plain
    Steward's saver alone (``steward.open(url).checkpointer`` with the stock side's plain
    configs): what the runtime's bookkeeping is measured against.
rt.config
    ``steward.open(url)`` (``await steward.aopen(url, pool_size=...)`` for async runs) and
    ``rt.config(tid, alice, durability=d)``, the durability set in the config (``rt.config``
    would default to "sync") and not passed to ``invoke``. Under "async" its steps are
    committed unflushed and the run's end flushes them (one flush per run, see
    ``StewardSaver.put``); under "sync" each step is flushed, as stock's.

Every side gets its own fresh database per scenario: a SQLite file, or on PostgreSQL a
database created with ``TEMPLATE template0`` on one server (a throwaway one started with
``tests/_pg.py``, ``fsync`` and ``synchronous_commit`` on, unless ``--pg-url`` names the
admin URL of a server you run), dropped afterwards. ``--no-postgres`` skips PostgreSQL,
``--no-sqlite`` SQLite.

Scenarios
---------
steps
    The 10-node chain of ``bench/checkpointer.py`` (each node increments a counter and sets a
    100-byte payload), a new thread per run, for each durability ("sync", "exit", "async") and
    each backend, the four sides interleaved: ``--rounds`` rounds (5) of ``--invocations``
    runs (30) per side, one untimed warm-up run per side first. A round's rate is steps per
    second of wall time inside ``invoke``, a run counting 12 steps: the checkpoints a run
    stores with "sync" (its input, the start, one per node), counted after each round with
    ``saver.list`` (with "async" a run stores the same 12, with "exit" only its last; every
    side must store the same number). Reported: the median of the rounds per side, and
    rt.config/stock and plain/stock.
chat
    One thread, ``--turns`` turns (200) through a 1-node graph whose state is a ``messages``
    list (``add_messages``); each turn appends one 500-byte ``HumanMessage`` (seeded letters,
    the same on both sides), ``durability="sync"``; Steward's turns each take a new
    ``rt.config(same thread, alice, durability="sync")``. Reported: the median ms per turn of
    the first 10 and of the last 10 turns, last/first, and the bytes after the last turn, as
    ``bench/checkpointer.py`` measures them (SQLite: the file after folding its WAL, and the
    saver's tables alone via ``dbstat``; PostgreSQL: ``pg_total_relation_size`` over the stock
    tables, and over Steward's ``steward_%`` tables, the audit log included). Steward's bytes
    are also shown per table.
concurrent (PostgreSQL)
    ``--concurrency`` runs (16) of the 10-node chain on distinct threads at once
    (``asyncio.gather`` of ``ainvoke``), ``--batches`` such batches (2) per side per round,
    ``--rounds`` rounds, sides in flipped order each round, all with durability "sync" on one
    event loop: stock ``AsyncPostgresSaver`` on a pool of 16, Steward plain and rt.config on
    ``steward.aopen(url, pool_size=16)``. One untimed batch per side first. Reported: steps/s
    of wall time (median of the rounds) and the ratio to stock. Note that the stock async
    saver holds an ``asyncio.Lock`` around every call, pool or not.
trips
    What one run exchanges with the database: the chain with 2 and with 10 nodes, per
    durability, ``--trip-runs`` runs (9) per side after a warm-up run, the median reported.
    The difference between the two chains, over 8, is the cost per node (a superstep); the
    rest, the intercept, is the cost per run. On PostgreSQL each side reaches its database
    through a counting proxy (``bench/_pgwire.py``, whose docstring says why psycopg's
    ``Connection.wait`` calls are not round trips and what exactly is counted): round trips
    (client flights); transactions (what ``pg_stat_database.xact_commit`` counts, without
    its reporting lag); writes (transactions given a transaction id, rolled back ones too, by
    ``txid_current()`` before and after: the server's count, so nothing else may write on it
    meanwhile); "unflushed", the transactions committed with ``synchronous_commit`` off
    (they do not wait for the WAL flush); statements; and errors (failed statements, such as
    an optimistic write that met a conflict and is retried). On SQLite, from the
    connections' trace callbacks: statements, transactions (``COMMIT``s) and fsync-ed commits
    (those that changed rows on a ``synchronous=FULL`` connection; Steward commits some
    writes on a ``synchronous=NORMAL`` one, whose commits do not fsync).

Fairness
--------
As in ``bench/checkpointer.py``: the sides of a comparison run in one process, interleaved
run by run (turn by turn), the order flipping every time and every round, so that machine
noise and drift hit them alike; each scenario starts on fresh databases; ratios read
"greater than 1 means Steward is better", the column next to them saying how they were
computed (steward/stock for throughput, stock/steward for bytes and milliseconds). The last
table checks the issue's targets.

Defaults take about 2-3 minutes on 2 cores, including the PostgreSQL server start. The
targets check Steward's rt.config side; their "detail" column gives the numbers behind each,
and plain's (the saver alone) for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    CHAIN_NODES,
    STEWARD_PATTERN,
    Say,
    Side,
    bench_parser,
    counts_and_only,
    fs_type,
    pg_settings,
    pg_tables_bytes,
    postgres_server,
    sqlite_tables_bytes,
    steward_postgres,
    steward_sqlite,
    stock_postgres,
    stock_sqlite,
)
from _runtime_scenarios import (
    ALICE,
    DURABILITIES,
    MEMORY,
    PLAIN,
    RT,
    STOCK,
    ConcurrentResult,
    StepsResult,
    TripsResult,
    postgres_trips,
    run_concurrent,
    run_steps,
    sqlite_trips,
)
from _scenarios import WINDOW, ChatResult, run_chat
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.table import Table

SCENARIOS = ("steps", "chat", "concurrent", "trips")
POSTGRES_ONLY = frozenset({"concurrent"})


@dataclass
class Settings:
    rounds: int
    invocations: int
    turns: int
    concurrency: int
    batches: int
    trip_runs: int
    only: frozenset[str]
    quick: bool


FULL = {"rounds": 5, "invocations": 30, "turns": 200, "concurrency": 16, "batches": 2,
        "trip_runs": 9}
QUICK = {"rounds": 2, "invocations": 4, "turns": 20, "concurrency": 4, "batches": 1,
         "trip_runs": 2}


# -- driving -----------------------------------------------------------------------------------


Opener = Callable[..., contextlib.AbstractContextManager[Side]]


@dataclass
class Backend:
    name: str
    fresh: Callable[[str, str], str]  # (scenario, side) -> a new database: path or URL
    stock: Opener
    steward: Opener
    tables: Callable[[str], dict[str, int]]  # a Steward database -> bytes per steward_ table
    admin_url: str | None = None  # PostgreSQL: the server's admin database


@dataclass
class Results:
    backend: str
    steps: dict[str, StepsResult] = field(default_factory=dict)  # per durability
    chat: ChatResult | None = None
    chat_tables: dict[str, int] = field(default_factory=dict)  # Steward's bytes per table
    concurrent: ConcurrentResult | None = None
    trips: TripsResult | None = None
    notes: list[str] = field(default_factory=list)


def _label(side: str) -> str:
    return side.replace(".", "_")  # database and file names


@contextlib.contextmanager
def open_sides(backend: Backend, scenario: str) -> Iterator[dict[str, Side]]:
    """The four sides of the steps scenario, each on a fresh database of its own."""
    with backend.stock(backend.fresh(scenario, STOCK)) as stock, \
            backend.steward(backend.fresh(scenario, PLAIN)) as plain, \
            backend.steward(backend.fresh(scenario, _label(RT))) as rt:
        yield {MEMORY: Side(InMemorySaver(), lambda: 0), STOCK: stock, PLAIN: plain, RT: rt}


def run_backend(backend: Backend, s: Settings, say: Say) -> Results:
    res = Results(backend.name)
    tag = backend.name
    if "steps" in s.only:
        for durability in DURABILITIES:
            say(f"{tag}: steps, durability={durability} ({s.rounds} rounds x "
                f"{s.invocations} runs per side)")
            with open_sides(backend, f"steps_{durability}") as sides:
                res.steps[durability] = run_steps(sides, durability, s.invocations, s.rounds,
                                                  say)
    if "chat" in s.only:
        say(f"{tag}: chat ({s.turns} turns, Steward through rt.config)")
        target = backend.fresh("chat", "steward")
        with backend.stock(backend.fresh("chat", STOCK)) as stock, \
                backend.steward(target) as ours:
            rt = ours.runtime

            def turn_config(tid: str) -> RunnableConfig:
                return rt.config(tid, ALICE, durability="sync")  # type: ignore[no-any-return]

            res.chat = run_chat({"stock": stock, "steward": ours}, s.turns,
                                configs={"steward": turn_config})
            res.chat_tables = backend.tables(target)
    if "concurrent" in s.only and backend.admin_url is not None:
        say(f"{tag}: concurrent ({s.concurrency} async runs at once, {s.batches} batches x "
            f"{s.rounds} rounds per side)")
        urls = {name: backend.fresh("concurrent", _label(name)) for name in (STOCK, PLAIN, RT)}
        res.concurrent = run_concurrent(urls, s.concurrency, s.batches, s.rounds, say)
    if "trips" in s.only:
        say(f"{tag}: trips ({s.trip_runs} runs per side of a {CHAIN_NODES}- and a 2-node "
            "chain, per durability)")
        if backend.admin_url:
            res.trips = postgres_trips(backend.admin_url, backend.fresh, {
                STOCK: backend.stock, PLAIN: backend.steward, RT: backend.steward},
                s.trip_runs, say)
        else:
            with backend.stock(backend.fresh("trips", STOCK)) as stock, \
                    backend.steward(backend.fresh("trips", PLAIN)) as plain, \
                    backend.steward(backend.fresh("trips", _label(RT))) as rt:
                res.trips = sqlite_trips({STOCK: stock, PLAIN: plain, RT: rt}, s.trip_runs,
                                         say)
            if res.trips is None:
                res.notes.append("SQLite trips not run: the savers' sqlite3 connections are "
                                 "not where the bench looks for them")
    return res


def bench_sqlite(root: Path, s: Settings, say: Say) -> Results:
    def fresh(scenario: str, side: str) -> str:
        d = root / scenario
        d.mkdir(exist_ok=True)
        return str(d / f"{side}.db")

    def tables(path: str) -> dict[str, int]:
        return sqlite_tables_bytes(Path(path), STEWARD_PATTERN)

    return run_backend(Backend("sqlite", fresh, stock_sqlite, steward_sqlite, tables), s, say)


def bench_postgres(pg_url: str | None, s: Settings, say: Say) -> tuple[Results, str]:
    say("postgres: " + ("connecting" if pg_url else "starting a throwaway server"))
    with postgres_server(pg_url) as server:
        created: list[str] = []

        def fresh(scenario: str, side: str) -> str:
            url = server.create_database(f"bench_{scenario}_{side}")
            created.append(url)
            return url

        def tables(url: str) -> dict[str, int]:
            return pg_tables_bytes(url, STEWARD_PATTERN)

        try:
            conf = pg_settings(server.admin_url)
            info = (f"PostgreSQL {conf['server_version'].split()[0]} (fsync={conf['fsync']}, "
                    f"synchronous_commit={conf['synchronous_commit']})")
            backend = Backend("postgres", fresh, stock_postgres, steward_postgres, tables,
                              server.admin_url)
            return run_backend(backend, s, say), info
        finally:
            for url in created:
                server.drop_database(url)


# -- reporting ---------------------------------------------------------------------------------


def _kib(value: float) -> str:
    return f"{value / 1024:,.0f}"


def _table(title: str, columns: list[str], left: int = 1, caption: str | None = None) -> Table:
    """A table whose first ``left`` columns are left-aligned and the rest right-aligned."""
    table = Table(title=title, caption=caption)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < left else "right", no_wrap=True)
    return table


def steps_table(results: list[Results]) -> Table | None:
    rows = [(r.backend, d, st) for r in results for d, st in r.steps.items()]
    if not rows:
        return None
    table = _table(
        f"Steps: the {CHAIN_NODES}-node chain, a new thread per run "
        "(steps/s, median of the rounds)",
        ["durability", "backend", "ckpt/run", MEMORY, STOCK, PLAIN, RT, "plain/stock",
         "rt.config/stock"], left=2,
        caption="steps/s: 12 per run (the checkpoints a sync run stores) per second inside "
                "invoke; ckpt/run: what a run stored with this durability (every side alike)")
    for backend, durability, st in sorted(rows, key=lambda x: DURABILITIES.index(x[1])):
        table.add_row(durability, backend, str(st.stored_per_run),
                      *(f"{st.median(side):,.0f}" for side in (MEMORY, STOCK, PLAIN, RT)),
                      f"{st.ratio(PLAIN):.2f}x", f"[bold]{st.ratio(RT):.2f}x[/bold]")
    return table


def chat_table(results: list[Results], s: Settings) -> Table | None:
    rows = [r for r in results if r.chat]
    if not rows:
        return None
    table = _table(f"Chat: one thread, {s.turns} turns, durability \"sync\" "
                   "(Steward: rt.config each turn)",
                   ["measure", "backend", "stock", "steward", "ratio", "ratio is"], left=2)
    n = min(WINDOW, s.turns // 2)
    for r in rows:
        ch = r.chat
        assert ch is not None
        measures: list[tuple[str, float, float, Callable[[float], str]]] = [
            (f"median ms/turn, turns {label}", ch.window_ms("stock", last=last),
             ch.window_ms("steward", last=last), lambda v: f"{v:.2f}")
            for last, label in ((False, f"1-{n}"), (True, f"{s.turns - n + 1}-{s.turns}"))]
        measures.append(("growth, last/first ms/turn", ch.growth("stock"),
                         ch.growth("steward"), lambda v: f"{v:.2f}x"))
        measures.append((f"KiB after {s.turns} turns", ch.db_bytes["stock"],
                         ch.db_bytes["steward"], _kib))
        if ch.table_bytes:
            measures.append(("KiB, saver tables only (dbstat)", ch.table_bytes["stock"],
                             ch.table_bytes["steward"], _kib))
        for label, a, b, fmt in measures:
            table.add_row(label, r.backend, fmt(a), fmt(b), f"{a / b:.2f}x", "stock/steward")
    return table


def chat_tables_table(results: list[Results], s: Settings) -> Table | None:
    rows = [r for r in results if r.chat_tables]
    if not rows:
        return None
    names = sorted({t for r in rows for t in r.chat_tables},
                   key=lambda t: -max(r.chat_tables.get(t, 0) for r in rows))
    table = _table(f"Steward's bytes per table after the chat's {s.turns} turns (KiB)",
                   ["table", *(r.backend for r in rows)],
                   caption="with indexes (and TOAST)")
    for name in names:
        table.add_row(name, *(_kib(r.chat_tables.get(name, 0)) for r in rows))
    table.add_row("[bold]total[/bold]", *(f"[bold]{_kib(sum(r.chat_tables.values()))}[/bold]"
                                          for r in rows))
    return table


def concurrent_table(results: list[Results]) -> Table | None:
    found = [r.concurrent for r in results if r.concurrent]
    if not found:
        return None
    c = found[0]
    table = _table(f"Concurrent: {c.concurrency} async runs at once on distinct threads "
                   f"(PostgreSQL, durability \"sync\", steps/s, median of the rounds)",
                   ["side", "steps/s", "ratio", "ratio is"],
                   caption=f"stock: AsyncPostgresSaver on an AsyncConnectionPool of "
                           f"{c.concurrency}; Steward: steward.aopen(url, "
                           f"pool_size={c.concurrency})")
    for side, label in ((STOCK, "stock AsyncPostgresSaver"), (PLAIN, "Steward plain"),
                        (RT, "Steward rt.config")):
        table.add_row(label, f"{c.median(side):,.0f}",
                      "-" if side == STOCK else f"{c.ratio(side):.2f}x",
                      "" if side == STOCK else "steward/stock")
    return table


PG_KEYS = ("trips", "transactions", "writes", "unflushed", "statements", "errors")
SQLITE_KEYS = ("statements", "transactions", "fsynced")


def _num(value: float, sign: bool = False) -> str:
    """A count: whole numbers as such, else with up to 2 decimals."""
    text = f"{value:{'+' if sign else ''}.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "+0") and not sign else text


def _line(t: TripsResult, side: str, durability: str, key: str) -> str:
    """``fixed + per-node`` of one count, e.g. ``4 + 2/node``."""
    return (f"{_num(t.fixed(side, durability, key))} + "
            f"{_num(t.per_node(side, durability, key))}/node")




def trips_table(t: TripsResult) -> Table:
    keys, main = (PG_KEYS, "trips") if t.backend == "postgres" else (SQLITE_KEYS, "fsynced")
    table = _table(
        f"Trips ({t.backend}): what one run of the {CHAIN_NODES}-node chain exchanges, "
        f"median of {t.runs} runs",
        ["durability", "side", *keys, f"{main}: per run + per node",
         f"{main} over stock: per run, per node"], left=2,
        caption="per run + per node: the line through the 2- and 10-node chains' counts"
                + ("; see bench/_pgwire.py for what is counted" if t.backend == "postgres"
                   else "; fsynced: commits that changed rows with synchronous=FULL"))
    for durability in DURABILITIES:
        for side in (STOCK, PLAIN, RT):
            extra = "-"
            if side != STOCK:
                fixed, node = t.over(side, STOCK, durability, main)
                extra = f"{_num(fixed, True)}, {_num(node, True)}"
            table.add_row(durability, side,
                          *(_num(t.at(side, durability, key)) for key in keys),
                          _line(t, side, durability, main), extra)
        table.add_section()
    return table


@dataclass
class Target:
    text: str
    backend: str
    need: str
    check: Callable[[float], bool]
    value: float | None = None
    shown: str = ""
    detail: str = ""

    def verdict(self) -> str:
        if self.value is None:
            return "not run"
        return "[green]met[/green]" if self.check(self.value) else "[red]not met[/red]"


def at_least(bound: float) -> Callable[[float], bool]:
    return lambda value: value >= bound


STEPS_NEED = {("sqlite", "sync"): 1.2, ("postgres", "sync"): 1.5}  # else 1.0
BYTES_NEED = {"sqlite": 20.0, "postgres": 4.0}


def targets(results: list[Results], s: Settings) -> list[Target]:
    by = {r.backend: r for r in results}
    out: list[Target] = []
    for durability in DURABILITIES:
        for backend in ("sqlite", "postgres"):
            need = STEPS_NEED.get((backend, durability), 1.0)
            t = Target(f"steps/s, rt.config vs stock, durability={durability}", backend,
                       f">= {need:g}x", at_least(need))
            st = by[backend].steps.get(durability) if backend in by else None
            if st:
                t.value = st.ratio(RT)
                t.shown = f"{t.value:.2f}x"
                t.detail = (f"{st.median(RT):,.0f} vs {st.median(STOCK):,.0f}/s; "
                            f"plain {st.ratio(PLAIN):.2f}x")
            out.append(t)
    for backend in ("sqlite", "postgres"):
        ch = by[backend].chat if backend in by else None
        n = min(WINDOW, s.turns // 2)
        t = Target(f"chat turn-{s.turns}/turn-{n} time (Steward)", backend,
                   "<= 1.3", lambda v: v <= 1.3)
        if ch:
            t.value = ch.growth("steward")
            t.shown = f"{t.value:.2f}"
            t.detail = (f"{ch.window_ms('steward', last=True):.1f} / "
                        f"{ch.window_ms('steward', last=False):.1f} ms; "
                        f"stock {ch.growth('stock'):.2f}")
        out.append(t)
    for backend in ("sqlite", "postgres"):
        ch = by[backend].chat if backend in by else None
        need = BYTES_NEED[backend]
        t = Target(f"storage after {s.turns} turns, audit included", backend,
                   f"<= 1/{need:g} of stock", at_least(need))
        if ch:
            a, b = ch.db_bytes["stock"], ch.db_bytes["steward"]
            t.value = a / b
            t.shown = f"1/{t.value:.1f}"
            t.detail = f"{_kib(b)} vs {_kib(a)} KiB"
        out.append(t)
    c = by["postgres"].concurrent if "postgres" in by else None
    t = Target(f"concurrent async runs, rt.config vs stock (x{s.concurrency})", "postgres",
               ">= 1.5x", lambda v: v >= 1.5)
    if c:
        t.value = c.ratio(RT)
        t.shown = f"{t.value:.2f}x"
        t.detail = (f"{c.median(RT):,.0f} vs {c.median(STOCK):,.0f}/s; "
                    f"plain {c.ratio(PLAIN):.2f}x")
    out.append(t)
    trips = by["postgres"].trips if "postgres" in by else None
    for durability in DURABILITIES:
        t = Target(f"round trips over stock, durability={durability}", "postgres",
                   "<= 1 per run, 0 per node", lambda v: v <= 0)
        if trips:
            fixed, node = trips.over(RT, STOCK, durability, "trips")
            t.value = max(fixed - 1, node)  # <= 0 when both hold
            t.shown = f"{_num(fixed, True)}, {_num(node, True)}/node"
            plain = trips.over(RT, PLAIN, durability, "trips")
            t.detail = (f"{_num(trips.at(RT, durability, 'trips'))} vs "
                        f"{_num(trips.at(STOCK, durability, 'trips'))}/run; vs plain "
                        f"{_num(plain[0], True)}, {_num(plain[1], True)}/node")
        out.append(t)
    return out


def targets_table(results: list[Results], s: Settings) -> Table:
    title = "Targets from issue 17"
    if s.quick:
        title += " (--quick: small numbers, not representative)"
    table = Table(title=title)
    for col in ("target", "backend", "required", "measured", "result", "detail"):
        table.add_column(col, justify="right" if col == "measured" else "left",
                         no_wrap=col != "detail")
    for t in targets(results, s):
        table.add_row(t.text, t.backend, t.need, t.shown or "-", t.verdict(), t.detail)
    return table


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = bench_parser(__doc__, SCENARIOS)
    opt = parser.add_argument
    opt("--rounds", type=int, help="rounds of the steps and concurrent scenarios (5; quick 2)")
    opt("--invocations", type=int, help="steps: runs per side per round (30; quick 4)")
    opt("--turns", type=int, help="chat turns on one thread (200; quick 20)")
    opt("--concurrency", type=int, help="concurrent async runs per batch (16; quick 4)")
    opt("--batches", type=int, help="concurrent batches per side per round (2; quick 1)")
    opt("--trip-runs", type=int, help="trips: counted runs per side and chain (9; quick 2)")
    opt("--no-sqlite", action="store_true", help="skip SQLite")
    args = parser.parse_args(argv)
    values, only = counts_and_only(parser, args, FULL, QUICK, SCENARIOS)
    if args.no_postgres and (args.no_sqlite or only <= POSTGRES_ONLY):
        parser.error("nothing to run: the concurrent scenario runs on PostgreSQL only")
    return args, Settings(only=only, quick=args.quick, **values)


def main(argv: list[str] | None = None) -> int:
    args, s = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the tables into 80 columns
        console = Console(width=160)
    started = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s  {msg}[/dim]",
                      highlight=False)

    results: list[Results] = []
    notes: list[str] = []
    if s.only - POSTGRES_ONLY and not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="steward-bench-", dir=args.tmpdir) as tmp:
            root = Path(tmp)
            notes.append(f"SQLite {sqlite3.sqlite_version} files on "
                         f"{fs_type(root.resolve())} (synchronous=FULL)")
            results.append(bench_sqlite(root, s, say))
    if not args.no_postgres:
        pg, info = bench_postgres(args.pg_url, s, say)
        results.append(pg)
        notes.append(info)
    notes += [note for r in results for note in r.notes]
    if "steps" in s.only:
        notes.append('rt.config under durability "async": a run\'s steps committed unflushed, '
                     "flushed once at its end (stock flushes every commit)")
    notes.append(f"{os.cpu_count()} CPUs; total run time {time.perf_counter() - started:.1f}s")

    tables: list[Any] = [steps_table(results), chat_table(results, s),
                         chat_tables_table(results, s), concurrent_table(results)]
    tables += [trips_table(r.trips) for r in results if r.trips]
    for table in tables:
        if table is not None:
            console.print(table)
    console.print(targets_table(results, s))
    console.print("; ".join(notes), highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
