"""Checkpointer benchmark: LangGraph's stock savers against Steward's, same database, same run.

Run it with ``make bench`` or ``python bench/checkpointer.py`` (``--help`` lists the options;
``--only chain,resume`` runs a subset, ``--quick`` is a smoke run with small numbers). Every
graph call uses ``durability="sync"``, so each superstep's checkpoint is committed before the
next step starts: the numbers measure the savers and their databases, not a background writer.

What is compared
----------------
SQLite
    stock: ``langgraph.checkpoint.sqlite.SqliteSaver`` on a ``sqlite3`` connection
    (``check_same_thread=False``) to a fresh file, with ``PRAGMA journal_mode=WAL`` and
    ``PRAGMA synchronous=FULL`` set before first use, the durability Steward's saver
    defaults to. Steward: ``steward.open("sqlite:///<dir>/steward.db").checkpointer`` (WAL and
    ``synchronous=FULL`` are its defaults).
PostgreSQL
    stock: ``PostgresSaver.from_conn_string(url)`` + ``.setup()`` (one connection; every call
    holds the saver's lock, which it also does when given a pool); Steward:
    ``steward.open(url).checkpointer`` (a connection pool). Each side gets its own fresh
    database (``CREATE DATABASE ... TEMPLATE template0``) on the same server, per scenario,
    dropped afterwards. ``--pg-url`` names an admin URL of a server you run; without it a
    throwaway server is started with the test harness (``tests/_pg.py``, ``fsync`` on,
    ``synchronous_commit`` on). ``--no-postgres`` skips PostgreSQL.

Each saver is taken as it comes: the bench sets the durability of the stock ones as above and
does not check what each of Steward's commits flushes. Steward is measured through its saver
alone: configs are plain ``{"configurable": {"thread_id": ...}}`` with no principal (except
where the tenant scenario binds threads to tenants), and ``rt.config()`` (which adds the lease
callback) is not used.

Scenarios
---------
floor
    The storage floor, the cost of one durable commit with nothing else around it: SQLite, a
    fresh WAL file with ``synchronous=FULL``, one-row table, ``BEGIN; UPDATE t SET v=v+1;
    COMMIT`` (``isolation_level=None``) ``--floor-commits`` times (500); PostgreSQL, the same
    ``UPDATE`` in autocommit mode on a fresh database with ``synchronous_commit=on``.
    20 untimed commits come first. Reported: mean and median microseconds per commit and
    commits/s; then Steward's (and stock's) chain checkpoints/s as a fraction of the floor's
    commits/s, and the resume p99 divided by the floor's mean commit time.
memory
    The other half of the floor: the chain and resume scenarios on LangGraph's
    ``InMemorySaver``, i.e. what the graphs cost in this process with no storage at all (both
    sides' samples pooled, ``--paused`` resumes in all). Shown as a reference table, with its
    resume p99 in floor commit times.
chain
    A ``StateGraph`` over ``{"counter": int, "payload": str}`` with 10 nodes in a chain; each
    node increments ``counter`` and sets a 100-byte ``payload`` (the state does not grow).
    ``--rounds`` rounds (5) of ``--invocations`` invocations (30) per side, each on a new
    thread id. A round's rate is the checkpoints it stored (one per superstep, counted
    afterwards with ``saver.list``) per second of wall time spent inside ``invoke``; reported
    is the median of the rounds per side and the ratio of the medians. One untimed warm-up
    invocation per side comes first.
chat
    One thread, ``--turns`` turns (200) through a 1-node graph whose state is a ``messages``
    channel with the ``add_messages`` reducer; each turn's input appends one 500-byte
    ``HumanMessage`` (seeded pseudo-random letters, identical on both sides, so that
    PostgreSQL's TOAST compression does not shrink repeated text to nothing).
    Reported: database bytes after the last turn, the median time per turn of the first 10
    and of the last 10 turns, and last/first (a saver that rewrites the whole history each
    step slows down as the thread grows). Bytes: for SQLite, the file plus its WAL after
    ``PRAGMA wal_checkpoint(TRUNCATE)`` (Steward's file also holds the empty tables of the
    LangGraph store ``steward.open`` sets up, so a second row counts only the saver's own
    tables and indexes, via the ``dbstat`` virtual table); for PostgreSQL,
    ``pg_total_relation_size`` (heap, indexes, TOAST) summed over the saver's tables: stock
    ``checkpoints``, ``checkpoint_blobs``, ``checkpoint_writes``, ``checkpoint_migrations``;
    Steward's ``steward_%`` tables, found through ``pg_tables``. Dead tuples not yet vacuumed
    count: they occupy the disk too.
resume
    ``--paused`` threads (1,000) per side run a graph A -> B -> C where B calls
    ``interrupt({"type": "approval_request"})``, so each stops paused at B. Then each is
    resumed with ``Command(resume="ok")`` (in a seeded random order, the same on both sides)
    and runs to the end. Reported: median and p99 (nearest rank) of the wall time of the
    resuming ``invoke`` calls, and the median time of the pausing calls for reference. One
    untimed pause and resume per side comes first.
tenants
    ``--threads-total`` threads (5,000) spread round-robin over ``--tenants`` tenants (50),
    one small checkpoint each, stored with ``saver.put`` directly (its time is reported too).
    Steward's threads are bound to their tenant by the principal in the config
    (``{"id": "user<i>", "tenant": "t<k>", "roles": ["auditor"]}``) and listed with
    ``saver.list_threads(Principal(id="x", tenant="t7", roles={"auditor"}), limit=50)``, the
    runtime being opened with ``thread_roles={"auditor": "read"}`` so that the auditor sees the
    whole tenant. The stock saver gets the tenant in the checkpoint metadata and is listed with
    ``list(saver.list(None, filter={"tenant": "t7"}, limit=50))``. Reported: the median time of
    ``--list-calls`` calls (50) per side, after 3 untimed ones.
audit
    Steward alone: the chain graph invoked with ``rt.config(thread_id)`` (the lease and the
    audit handler, whose events are written in the transactions of the checkpoints) against
    the same config without the audit handler, interleaved as above; reported in the targets
    table as the ratio of the medians (issue #6: the handler costs at most 10%).
workers (PostgreSQL only)
    One saver shared by 1 and then by 4 Python threads (a ``ThreadPoolExecutor``), each
    invoking the 10-node chain on its own thread ids; ``--worker-invocations`` invocations
    (40) per batch in all, split evenly. Steward is opened with ``pool_size=8``. Reported per
    side: checkpoints/s of wall time for 1 and for 4 workers (median over ``--rounds``
    rounds), and the 4/1 scaling.

Fairness
--------
Both sides of a comparison run in the same process, interleaved call by call: chain
invocation *i*, chat turn *i*, pause *i*, resume *i*, put *i* and listing call *i* run on one
side and then on the other, and the order flips every time (and every round), so that machine
noise and any drift hit both sides alike. Each scenario starts on fresh databases.

The ratio column always reads "greater than 1 means Steward is better", and the column next
to it says which way it was computed: steward/stock for throughput and scaling, stock/steward
for bytes and for milliseconds. The last table checks the project's targets.

Defaults take about 2-3 minutes on 2 cores, including the PostgreSQL server start.
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
    Say,
    Side,
    bench_parser,
    counts_and_only,
    fs_type,
    pg_settings,
    postgres_server,
    steward_postgres,
    steward_sqlite,
    stock_postgres,
    stock_sqlite,
)
from _scenarios import (
    LIST_LIMIT,
    LIST_TENANT,
    WINDOW,
    AuditResult,
    ChainResult,
    ChatResult,
    FloorResult,
    MemoryResult,
    ResumeResult,
    TenantsResult,
    WorkersResult,
    postgres_floor,
    run_audit,
    run_chain,
    run_chat,
    run_memory,
    run_resume,
    run_tenants,
    run_workers,
    sqlite_floor,
)
from rich.console import Console
from rich.table import Table

SCENARIOS = ("floor", "memory", "chain", "chat", "resume", "tenants", "workers", "audit")


@dataclass
class Settings:
    rounds: int
    invocations: int
    turns: int
    paused: int
    threads_total: int
    tenants: int
    list_calls: int
    worker_invocations: int
    floor_commits: int
    only: frozenset[str]
    quick: bool


FULL = {"rounds": 5, "invocations": 30, "turns": 200, "paused": 1000, "threads_total": 5000,
        "tenants": 50, "list_calls": 50, "worker_invocations": 40, "floor_commits": 500}
QUICK = {"rounds": 2, "invocations": 5, "turns": 30, "paused": 40, "threads_total": 500,
         "tenants": 50, "list_calls": 20, "worker_invocations": 8, "floor_commits": 100}


# -- driving -----------------------------------------------------------------------------------


Opener = Callable[..., contextlib.AbstractContextManager[Side]]


@dataclass
class Backend:
    name: str
    fresh: Callable[[str, str], str]  # (scenario, side) -> a new database: path or URL
    stock: Opener
    steward: Opener
    floor: Callable[[str, int], FloorResult]
    info: str = ""


@dataclass
class Results:
    backend: str
    floor: FloorResult | None = None
    chain: ChainResult | None = None
    chat: ChatResult | None = None
    resume: ResumeResult | None = None
    tenants: TenantsResult | None = None
    workers: WorkersResult | None = None
    audit: AuditResult | None = None


@contextlib.contextmanager
def open_sides(backend: Backend, scenario: str,
               **steward_options: Any) -> Iterator[dict[str, Side]]:
    with backend.stock(backend.fresh(scenario, "stock")) as a, \
            backend.steward(backend.fresh(scenario, "steward"), **steward_options) as b:
        yield {"stock": a, "steward": b}


def run_backend(backend: Backend, s: Settings, say: Say) -> Results:
    res = Results(backend.name)
    tag = backend.name
    if "floor" in s.only:
        say(f"{tag}: floor ({s.floor_commits} fsync-ed commits)")
        res.floor = backend.floor(backend.fresh("floor", "bare"), s.floor_commits)
        say(f"  {res.floor.mean_us:,.0f} us/commit, {res.floor.per_second:,.0f} commits/s")
    if "chain" in s.only:
        say(f"{tag}: chain ({s.rounds} rounds x {s.invocations} invocations per side)")
        with open_sides(backend, "chain") as sides:
            res.chain = run_chain(sides, s.invocations, s.rounds, say)
    if "chat" in s.only:
        say(f"{tag}: chat ({s.turns} turns)")
        with open_sides(backend, "chat") as sides:
            res.chat = run_chat(sides, s.turns)
    if "resume" in s.only:
        say(f"{tag}: resume ({s.paused} paused threads per side)")
        with open_sides(backend, "resume") as sides:
            res.resume = run_resume(sides, s.paused, say)
    if "tenants" in s.only:
        say(f"{tag}: tenants ({s.threads_total} threads, {s.tenants} tenants)")
        with open_sides(backend, "tenants", thread_roles={"auditor": "read"}) as sides:
            res.tenants = run_tenants(sides, s.threads_total, s.tenants, s.list_calls, say)
    if "workers" in s.only and backend.name == "postgres":
        say(f"{tag}: workers (1 vs 4, {s.worker_invocations} invocations per batch, "
            f"{s.rounds} rounds)")
        with open_sides(backend, "workers", pool_size=8) as sides:
            res.workers = run_workers(sides, s.worker_invocations, s.rounds, say)
    if "audit" in s.only:
        say(f"{tag}: audit ({s.rounds} rounds x {s.invocations} invocations, with and "
            "without the audit handler)")
        with backend.steward(backend.fresh("audit", "steward")) as side:
            res.audit = run_audit(side, s.invocations, s.rounds, say)
    return res


def bench_sqlite(root: Path, s: Settings, say: Say) -> Results:
    def fresh(scenario: str, side: str) -> str:
        d = root / scenario
        d.mkdir(exist_ok=True)
        return str(d / f"{side}.db")

    backend = Backend("sqlite", fresh, stock_sqlite, steward_sqlite,
                      lambda p, n: sqlite_floor(Path(p), n))
    return run_backend(backend, s, say)


def bench_postgres(pg_url: str | None, s: Settings, say: Say) -> tuple[Results, str]:
    say("postgres: " + ("connecting" if pg_url else "starting a throwaway server"))
    with postgres_server(pg_url) as server:
        created: list[str] = []

        def fresh(scenario: str, side: str) -> str:
            url = server.create_database(f"bench_{scenario}_{side}")
            created.append(url)
            return url

        try:
            conf = pg_settings(server.admin_url)
            version = conf["server_version"].split()[0]
            info = (f"PostgreSQL {version} (fsync={conf['fsync']}, "
                    f"synchronous_commit={conf['synchronous_commit']}, "
                    f"wal_sync_method={conf['wal_sync_method']})")
            backend = Backend("postgres", fresh, stock_postgres, steward_postgres,
                              postgres_floor)
            return run_backend(backend, s, say), info
        finally:
            for url in created:
                server.drop_database(url)


# -- reporting ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    backend: str
    stock: float
    steward: float
    unit: str  # "/s", "B", "ms" or "x"
    higher_is_better: bool

    def ratio(self) -> float:
        if self.higher_is_better:
            return self.steward / self.stock
        return self.stock / self.steward


def _fmt(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 1024:,.0f}"
    if unit == "ms":
        return f"{value:,.2f}"
    if unit == "x":
        return f"{value:,.2f}x"
    return f"{value:,.0f}"


def comparison_rows(r: Results, s: Settings) -> list[Row]:
    b = r.backend
    rows: list[Row] = []
    if r.chain:
        c = r.chain
        rows.append(Row(f"chain: ckpt/s, median of {len(c.rates)} rounds "
                        f"({c.invocations}x{c.per_invocation})", b,
                        c.median("stock"), c.median("steward"), "/s", True))
    if r.chat:
        ch = r.chat
        n = min(WINDOW, s.turns // 2)
        rows.append(Row(f"chat: KiB after {s.turns} turns", b, ch.db_bytes["stock"],
                        ch.db_bytes["steward"], "B", False))
        if ch.table_bytes:
            rows.append(Row("chat: KiB, saver tables only (dbstat)", b,
                            ch.table_bytes["stock"], ch.table_bytes["steward"], "B", False))
        for last, label in ((False, f"1-{n}"), (True, f"{s.turns - n + 1}-{s.turns}")):
            rows.append(Row(f"chat: median ms/turn, turns {label}", b,
                            ch.window_ms("stock", last=last), ch.window_ms("steward", last=last),
                            "ms", False))
        rows.append(Row("chat: growth, last/first ms/turn", b, ch.growth("stock"),
                        ch.growth("steward"), "x", False))
    if r.resume:
        rs = r.resume
        rows += [
            Row(f"resume: pause ms, median ({rs.paused} threads)", b,
                rs.pause_median_ms("stock"), rs.pause_median_ms("steward"), "ms", False),
            Row(f"resume: ms, median ({rs.paused} paused)", b, rs.median_ms("stock"),
                rs.median_ms("steward"), "ms", False),
            Row(f"resume: ms, p99 ({rs.paused} paused)", b, rs.p99_ms("stock"),
                rs.p99_ms("steward"), "ms", False),
        ]
    if r.tenants:
        t = r.tenants
        rows += [
            Row(f"tenants: put ms, median ({t.threads:,} puts)", b, t.put_median_ms("stock"),
                t.put_median_ms("steward"), "ms", False),
            Row(f"tenants: list ms, median ({t.threads:,} thr, {t.tenants} ten, "
                f"limit {LIST_LIMIT})", b, t.list_median_ms("stock"),
                t.list_median_ms("steward"), "ms", False),
        ]
    if r.workers:
        w = r.workers
        for n_workers in (1, 4):
            rows.append(Row(f"workers: ckpt/s, {n_workers} worker{'s' * (n_workers > 1)} "
                            f"({w.invocations}x{w.per_invocation})", b,
                            w.median("stock", n_workers), w.median("steward", n_workers),
                            "/s", True))
        rows.append(Row("workers: 4/1 scaling", b, w.scaling("stock"), w.scaling("steward"),
                        "x", True))
    return rows


def comparison_table(results: list[Results], s: Settings, caption: str) -> Table:
    table = Table(
        title="Checkpointer benchmark, durability=\"sync\"\n"
              "ratio > 1 means Steward is better; 'ratio is' says how it was computed",
        caption=caption,
    )
    for col in ("scenario", "backend", "stock", "steward", "ratio", "ratio is"):
        left = col in ("scenario", "backend", "ratio is")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for r in results:
        for row in comparison_rows(r, s):
            table.add_row(row.scenario, row.backend, _fmt(row.stock, row.unit),
                          _fmt(row.steward, row.unit), f"{row.ratio():.2f}x",
                          "steward/stock" if row.higher_is_better else "stock/steward")
    return table


def floor_table(results: list[Results]) -> Table | None:
    rows = [r for r in results if r.floor]
    if not rows:
        return None
    table = Table(title="Distance to the storage floor (a bare fsync-ed commit loop)",
                  caption="chain/floor: median chain checkpoints/s over the floor's commits/s "
                          "(1 = at the floor)\nresume p99/floor: resume p99 over the floor's "
                          "mean commit time (target <= 2 for Steward)")
    for col in ("backend", "us/commit mean", "median", "commits/s", "chain/floor steward",
                "stock", "resume p99/floor steward", "stock"):
        table.add_column(col, justify="left" if col == "backend" else "right", no_wrap=True)
    for r in rows:
        f = r.floor
        assert f is not None
        chain = [f"{r.chain.median(side) / f.per_second:.2f}" if r.chain else "-"
                 for side in ("steward", "stock")]
        resume = [f"{r.resume.p99_ms(side) * 1000 / f.mean_us:.1f}" if r.resume else "-"
                  for side in ("steward", "stock")]
        table.add_row(r.backend, f"{f.mean_us:,.0f}", f"{f.median_us:,.0f}",
                      f"{f.per_second:,.0f}", *chain, *resume)
    return table


def memory_table(memory: MemoryResult | None, results: list[Results]) -> Table | None:
    if memory is None:
        return None
    floors = [(r.backend, r.floor) for r in results if r.floor]
    table = Table(title="Reference: LangGraph alone, InMemorySaver (no storage at all)",
                  caption="p99 / floor: the in-memory resume p99 in floor commit times"
                  if floors else None)
    for col in ("chain ckpt/s", "resume ms median", "resume ms p99",
                *(f"p99 / {b} floor" for b, _ in floors)):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_row(f"{memory.chain:,.0f}", f"{memory.resume_median_ms:.2f}",
                  f"{memory.resume_p99_ms:.2f}",
                  *(f"{memory.resume_p99_ms * 1000 / f.mean_us:.1f}x" for _, f in floors))
    return table


@dataclass
class Target:
    text: str
    backend: str
    need: str
    value: float | None = None
    check: Callable[[float], bool] = field(default=lambda v: False)
    detail: str = ""

    def verdict(self) -> str:
        if self.value is None:
            return "not run"
        return "[green]PASS[/green]" if self.check(self.value) else "[red]FAIL[/red]"


def at_least(bound: float) -> Callable[[float], bool]:
    return lambda value: value >= bound


def targets(results: list[Results], s: Settings, memory: MemoryResult | None) -> list[Target]:
    by = {r.backend: r for r in results}
    out: list[Target] = []
    chain_need = {"sqlite": 1.5, "postgres": 2.0}
    bytes_need = {"sqlite": 20.0, "postgres": 8.0}
    for backend in ("sqlite", "postgres"):
        stock = "SqliteSaver" if backend == "sqlite" else "PostgresSaver"
        r = by.get(backend) or Results(backend)
        t = Target(f"steps/s vs stock {stock}", backend,
                   f">= {chain_need[backend]:g}x",
                   check=at_least(chain_need[backend]))
        if r.chain:
            a, b = r.chain.median("stock"), r.chain.median("steward")
            t.value, t.detail = b / a, f"{b:,.0f} vs {a:,.0f} ckpt/s"
        out.append(t)
        t = Target(f"storage after {s.turns} turns vs stock", backend,
                   f"<= 1/{bytes_need[backend]:g} (>= {bytes_need[backend]:g}x)",
                   check=at_least(bytes_need[backend]))
        if r.chat:
            a, b = r.chat.db_bytes["stock"], r.chat.db_bytes["steward"]
            t.value, t.detail = a / b, f"{b / 1024:,.0f} vs {a / 1024:,.0f} KiB"
            if r.chat.table_bytes:
                ta, tb = r.chat.table_bytes["stock"], r.chat.table_bytes["steward"]
                t.detail += f"; tables only {ta / tb:.2f}x"
        out.append(t)
    for backend in ("sqlite", "postgres"):
        r = by.get(backend) or Results(backend)
        n = min(WINDOW, s.turns // 2)
        t = Target(f"chat turn-{s.turns}/turn-{n} time (Steward)", backend, "<= 1.3",
                   check=lambda v: v <= 1.3)
        if r.chat:
            t.value = r.chat.growth("steward")
            t.detail = (f"{r.chat.window_ms('steward', last=True):.2f} / "
                        f"{r.chat.window_ms('steward', last=False):.2f} ms per turn; "
                        f"stock {r.chat.growth('stock'):.2f}")
        out.append(t)
    for backend in ("sqlite", "postgres"):
        r = by.get(backend) or Results(backend)
        t = Target(f"tenant listing at {s.threads_total:,} threads (Steward)", backend, "< 2 ms",
                   check=lambda v: v < 2.0)
        if r.tenants:
            t.value = r.tenants.list_median_ms("steward")
            t.detail = f"median of {s.list_calls}; stock {r.tenants.list_median_ms('stock'):.2f} ms"
        out.append(t)
    for backend in ("sqlite", "postgres"):
        r = by.get(backend) or Results(backend)
        t = Target(f"resume p99 at {s.paused:,} paused / floor (Steward)", backend,
                   "<= 2x floor", check=lambda v: v <= 2.0)
        if r.resume and r.floor:
            p99 = r.resume.p99_ms("steward")
            t.value = p99 * 1000 / r.floor.mean_us
            t.detail = (f"{p99:.2f} ms / {r.floor.mean_us / 1000:.3f} ms commit; "
                        f"stock {r.resume.p99_ms('stock') * 1000 / r.floor.mean_us:.1f}x")
            if memory is not None:
                t.detail += f"; in-memory p99 {memory.resume_p99_ms:.2f} ms"
        out.append(t)
    r = by.get("postgres") or Results("postgres")
    t = Target("4 vs 1 Postgres workers (Steward)", "postgres", ">= 1.5x",
               check=lambda v: v >= 1.5)
    if r.workers:
        t.value = r.workers.scaling("steward")
        t.detail = (f"{r.workers.median('steward', 4):,.0f} vs "
                    f"{r.workers.median('steward', 1):,.0f} ckpt/s; "
                    f"stock {r.workers.scaling('stock'):.2f}x")
    out.append(t)
    for backend in ("sqlite", "postgres"):
        r = by.get(backend) or Results(backend)
        t = Target("audit handler: steps/s with / without (Steward)", backend, ">= 0.9",
                   check=at_least(0.9))
        if r.audit:
            t.value = r.audit.ratio()
            t.detail = (f"{r.audit.median('audited'):,.0f} vs "
                        f"{r.audit.median('plain'):,.0f} ckpt/s (rt.config with and without "
                        "the audit handler)")
        out.append(t)
    return out


def targets_table(results: list[Results], s: Settings,
                  memory: MemoryResult | None) -> Table:
    title = "Targets from the issue"
    if s.quick:
        title += " (--quick: small numbers, not representative)"
    table = Table(title=title)
    for col in ("target", "backend", "required", "measured", "result", "detail"):
        table.add_column(col, justify="right" if col == "measured" else "left",
                         no_wrap=col != "detail")
    for t in targets(results, s, memory):
        measured = "-" if t.value is None else f"{t.value:,.2f}"
        if t.value is not None and "ms" in t.need:
            measured += " ms"
        elif t.value is not None and "x" in t.need:
            measured += "x"
        table.add_row(t.text, t.backend, t.need, measured, t.verdict(), t.detail)
    return table


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = bench_parser(__doc__, SCENARIOS)
    opt = parser.add_argument
    opt("--rounds", type=int, help="rounds of the chain and workers scenarios (5; quick 2)")
    opt("--invocations", type=int, help="chain invocations per side per round (30; quick 5)")
    opt("--turns", type=int, help="chat turns on one thread (200; quick 30)")
    opt("--paused", type=int, help="paused threads per side to resume (1000; quick 40)")
    opt("--threads-total", type=int,
        help="threads per side for tenant listing (5000; quick 500)")
    opt("--tenants", type=int, help="tenants those threads are spread over (50)")
    opt("--list-calls", type=int, help="timed tenant-listing calls per side (50; quick 20)")
    opt("--worker-invocations", type=int,
        help="chain invocations per workers batch, a multiple of 4 (40; quick 8)")
    opt("--floor-commits", type=int, help="commits in the storage floor loop (500; quick 100)")
    args = parser.parse_args(argv)
    values, only = counts_and_only(parser, args, FULL, QUICK, SCENARIOS)
    if args.no_postgres and only == {"workers"}:
        parser.error("the workers scenario runs on PostgreSQL only")
    if values["worker_invocations"] % 4:
        parser.error("--worker-invocations must be a multiple of 4")
    if values["threads_total"] < values["tenants"] or values["tenants"] <= 7:
        parser.error(f"--tenants must be > 7 (tenant {LIST_TENANT} is listed) and "
                     "<= --threads-total")
    return args, Settings(only=only, quick=args.quick, **values)


def main(argv: list[str] | None = None) -> int:
    args, s = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the tables into 80 columns
        console = Console(width=150)
    started = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s  {msg}[/dim]",
                      highlight=False)

    results: list[Results] = []
    notes: list[str] = []
    memory: MemoryResult | None = None
    if "memory" in s.only:
        say(f"memory: InMemorySaver reference ({s.rounds} chain rounds, {s.paused} resumes)")
        memory = run_memory(s.invocations, s.rounds, s.paused, say)
    with tempfile.TemporaryDirectory(prefix="steward-bench-", dir=args.tmpdir) as tmp:
        root = Path(tmp)
        notes.append(f"SQLite {sqlite3.sqlite_version} files on "
                     f"{fs_type(root.resolve())} (synchronous=FULL)")
        results.append(bench_sqlite(root, s, say))
    if not args.no_postgres:
        pg, info = bench_postgres(args.pg_url, s, say)
        results.append(pg)
        notes.append(info)
    elapsed = time.perf_counter() - started
    notes.append(f"{os.cpu_count()} CPUs; total run time {elapsed:.1f}s")

    console.print(comparison_table(results, s, "; ".join(notes)))
    for extra in (floor_table(results), memory_table(memory, results)):
        if extra is not None:
            console.print(extra)
    console.print(targets_table(results, s, memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
