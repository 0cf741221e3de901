"""Checkpointer benchmark: LangGraph's stock savers against Steward's, same database, same run.

Run it with ``python bench/checkpointer.py`` (``--help`` lists the options). Every graph call
uses ``durability="sync"``, so each superstep's checkpoint is committed before the next step
starts: the numbers measure the savers and their databases, not a background writer.

What is compared
----------------
SQLite
    stock: ``langgraph.checkpoint.sqlite.SqliteSaver`` on a ``sqlite3`` connection
    (``check_same_thread=False``) to a fresh file, with ``PRAGMA journal_mode=WAL`` and
    ``PRAGMA synchronous=FULL`` set before first use, so that both sides promise the same
    durability. Steward: ``steward.open("sqlite:///<dir>/steward.db").checkpointer`` (WAL and
    ``synchronous=FULL`` are its defaults).
PostgreSQL
    stock: ``PostgresSaver.from_conn_string(url)`` + ``.setup()``; Steward:
    ``steward.open(url).checkpointer``. Each side gets its own fresh database
    (``CREATE DATABASE ... TEMPLATE template0``) on the same server, dropped afterwards.
    ``--pg-url`` names an admin URL of a server you run; without it a throwaway server is
    started with the test harness (``tests/_pg.py``, ``fsync`` on). ``--no-postgres`` skips it.

Steward is measured through its saver alone: configs are plain
``{"configurable": {"thread_id": ...}}`` with no principal, and ``rt.config()`` (which adds the
lease callback) is not used.

Scenarios
---------
chain
    A ``StateGraph`` over ``{"counter": int, "payload": str}`` with 10 nodes in a chain; each
    node increments ``counter`` and sets a 100-byte ``payload`` (the state does not grow).
    It is invoked ``--invocations`` times, each on a new thread id. Reported: checkpoints
    (one per superstep, counted afterwards with ``saver.list``) per second of wall time spent
    inside ``invoke``. One untimed warm-up invocation per side comes first.
chat
    One thread, ``--turns`` turns through a 1-node graph whose state is a ``messages`` channel
    with the ``add_messages`` reducer; each turn's input appends one 500-byte ``HumanMessage``
    (seeded pseudo-random letters, identical on both sides, so that PostgreSQL's TOAST
    compression does not shrink repeated text to nothing).
    Reported: database bytes after the last turn, and the mean time per turn of the first 10
    and of the last 10 turns (a saver that rewrites the whole history each step slows down as
    the thread grows). Bytes: for SQLite, the file plus its WAL after
    ``PRAGMA wal_checkpoint(TRUNCATE)`` (Steward's file also holds the empty tables of the
    LangGraph store ``steward.open`` sets up, so a second row counts only the saver's own
    tables and indexes, via the ``dbstat`` virtual table); for PostgreSQL,
    ``pg_total_relation_size`` (heap, indexes, TOAST) summed over the saver's tables: stock
    ``checkpoints``, ``checkpoint_blobs``, ``checkpoint_writes``, ``checkpoint_migrations``;
    Steward's ``steward_%`` tables, found through ``pg_tables``. Dead tuples not yet vacuumed
    count: they occupy the disk too.

Fairness
--------
Both sides of a comparison run in the same process, interleaved call by call: chain
invocation *i* (and chat turn *i*) runs on one side and then on the other, and the order
flips every round, so that machine noise and any drift hit both sides alike. Each scenario
starts on fresh databases.

The ratio column always reads "greater than 1 means Steward is better": steward/stock for
throughput, stock/steward for bytes and for milliseconds per turn.

Defaults (30 invocations, 200 turns) take well under a minute on 2 cores, including the
PostgreSQL server start; ``--quick`` (5 invocations, 30 turns) is for smoke tests.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from rich.console import Console
from rich.table import Table

import steward

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

REPO = Path(__file__).resolve().parent.parent
CHAIN_NODES = 10
PAYLOAD_BYTES = 100
MESSAGE_BYTES = 500
WINDOW = 10  # turns at the start and at the end of the chat whose time is reported

STOCK_PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes",
                   "checkpoint_migrations")
STOCK_SQLITE_TABLES = ("checkpoints", "writes")
STEWARD_PATTERN = r"steward\_%"  # LIKE pattern, with "\" as escape character

SIDES = ("stock", "steward")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz     "


# -- graphs ------------------------------------------------------------------------------------


class ChainState(TypedDict):
    counter: int
    payload: str


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class ChainNode:
    """Node ``index`` of the chain: counter + 1 and a fresh 100-byte payload."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, state: ChainState) -> dict[str, Any]:
        counter = state["counter"] + 1
        text = f"node {self.index} counter {counter} "
        return {"counter": counter, "payload": (text * 8)[:PAYLOAD_BYTES]}


def chain_graph(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(ChainState)
    names = [f"n{i}" for i in range(CHAIN_NODES)]
    for i, name in enumerate(names):
        builder.add_node(name, ChainNode(i))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=saver)


def _chat_node(state: ChatState) -> dict[str, Any]:
    return {}  # the turn's message arrives with the input; the node only makes it a superstep


def chat_graph(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(ChatState)
    builder.add_node("respond", _chat_node)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=saver)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _message(turn: int) -> HumanMessage:
    # Seeded pseudo-random letters: the same on both sides, and not squeezed to nothing by
    # PostgreSQL's TOAST compression the way a repeated string would be.
    rng = random.Random(turn)
    text = "".join(rng.choice(_ALPHABET) for _ in range(MESSAGE_BYTES))
    return HumanMessage(content=text, id=f"msg-{turn:05d}")


# -- backends ----------------------------------------------------------------------------------


@dataclass
class Side:
    """An open checkpointer plus a way to measure how much its database holds."""

    saver: BaseCheckpointSaver[Any]
    db_bytes: Callable[[], int]
    table_bytes: Callable[[], int] | None = None  # SQLite only: the saver's tables alone


class PgAdmin(Protocol):
    admin_url: str

    def create_database(self, prefix: str = ...) -> str: ...

    def drop_database(self, url: str) -> None: ...


class ExternalPg:
    """Creates and drops databases on a server given by an admin URL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def create_database(self, prefix: str = "bench") -> str:
        import psycopg
        from psycopg import sql

        name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0")
                         .format(sql.Identifier(name)))
        return _with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        import psycopg
        from psycopg import sql

        name = _database_of(url)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _database_of(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path.lstrip("/"))


@contextlib.contextmanager
def postgres_server(pg_url: str | None) -> Iterator[PgAdmin]:
    if pg_url:
        yield ExternalPg(pg_url)
        return
    sys.path.insert(0, str(REPO / "tests"))
    from _pg import start_postgres  # type: ignore[import-not-found,unused-ignore]

    with start_postgres() as server:
        yield server


def sqlite_file_bytes(path: Path) -> int:
    """File + WAL size after folding the WAL into the file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError(f"wal_checkpoint(TRUNCATE) on {path} was blocked by a reader")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def sqlite_table_bytes(path: Path, where: str, params: tuple[str, ...]) -> int:
    """Bytes of the pages of the matching tables and their indexes (dbstat)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
            f"(SELECT name FROM sqlite_master WHERE {where})", params,
        ).fetchone()
    return int(row[0])


@contextlib.contextmanager
def stock_sqlite(path: Path) -> Iterator[Side]:
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        saver = SqliteSaver(conn)
        saver.setup()
        marks = ", ".join("?" for _ in STOCK_SQLITE_TABLES)
        yield Side(saver, lambda: sqlite_file_bytes(path),
                   lambda: sqlite_table_bytes(path, f"tbl_name IN ({marks})",
                                              STOCK_SQLITE_TABLES))
    finally:
        conn.close()


@contextlib.contextmanager
def steward_sqlite(path: Path) -> Iterator[Side]:
    with steward.open(f"sqlite:///{path}") as rt:
        yield Side(rt.checkpointer, lambda: sqlite_file_bytes(path),
                   lambda: sqlite_table_bytes(path, "tbl_name LIKE ? ESCAPE '\\'",
                                              (STEWARD_PATTERN,)))


def pg_table_bytes(url: str, where: str, param: object) -> int:
    import psycopg

    query = (
        "SELECT coalesce(sum(pg_total_relation_size("
        "format('%%I.%%I', schemaname, tablename)::regclass)), 0), count(*) "
        f"FROM pg_tables WHERE schemaname = current_schema() AND {where}"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, (param,)).fetchone()
    assert row is not None
    size, count = row
    if count == 0:
        raise RuntimeError(f"no saver tables found in {_database_of(url)}")
    return int(size)


@contextlib.contextmanager
def stock_postgres(url: str) -> Iterator[Side]:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        yield Side(saver, lambda: pg_table_bytes(url, "tablename = ANY(%s)",
                                                 list(STOCK_PG_TABLES)))


@contextlib.contextmanager
def steward_postgres(url: str) -> Iterator[Side]:
    with steward.open(url) as rt:
        yield Side(rt.checkpointer, lambda: pg_table_bytes(
            url, "tablename LIKE %s ESCAPE '\\'", STEWARD_PATTERN))


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class ChainResult:
    steps: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def rate(self, side: str) -> float:
        return self.steps[side] / self.seconds[side]


@dataclass
class ChatResult:
    turn_seconds: dict[str, list[float]] = field(default_factory=dict)
    db_bytes: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)

    def window_ms(self, side: str, *, last: bool) -> float:
        times = self.turn_seconds[side]
        n = min(WINDOW, len(times) // 2)
        return 1000 * statistics.fmean(times[-n:] if last else times[:n])


def _order(round_no: int) -> tuple[str, ...]:
    return SIDES if round_no % 2 == 0 else SIDES[::-1]


def run_chain(sides: dict[str, Side], invocations: int) -> ChainResult:
    graphs = {name: chain_graph(side.saver) for name, side in sides.items()}
    start: ChainState = {"counter": 0, "payload": ""}
    for name in _order(0):  # warm-up, untimed, on its own thread
        graphs[name].invoke(start, _config(f"warmup-{name}"), durability="sync")
    threads: dict[str, list[str]] = {name: [] for name in sides}
    result = ChainResult(seconds=dict.fromkeys(sides, 0.0))
    gc.collect()
    for i in range(invocations):
        for name in _order(i):
            tid = f"chain-{name}-{i}"
            t0 = time.perf_counter()
            out = graphs[name].invoke(start, _config(tid), durability="sync")
            result.seconds[name] += time.perf_counter() - t0
            if out["counter"] != CHAIN_NODES:
                raise RuntimeError(f"{name}: thread {tid} ended with counter {out['counter']}")
            threads[name].append(tid)
    for name, side in sides.items():
        result.steps[name] = sum(
            sum(1 for _ in side.saver.list(_config(tid))) for tid in threads[name]
        )
    if result.steps["stock"] != result.steps["steward"]:
        raise RuntimeError(f"the savers stored different numbers of checkpoints: {result.steps}")
    return result


def run_chat(sides: dict[str, Side], turns: int) -> ChatResult:
    graphs = {name: chat_graph(side.saver) for name, side in sides.items()}
    result = ChatResult(turn_seconds={name: [] for name in sides})
    gc.collect()
    for turn in range(1, turns + 1):
        message = {"messages": [_message(turn)]}
        for name in _order(turn):
            t0 = time.perf_counter()
            graphs[name].invoke(message, _config(f"chat-{name}"), durability="sync")
            result.turn_seconds[name].append(time.perf_counter() - t0)
    for name, side in sides.items():
        stored = graphs[name].get_state(_config(f"chat-{name}")).values["messages"]
        if len(stored) != turns:
            raise RuntimeError(f"{name}: chat thread holds {len(stored)} messages, not {turns}")
        result.db_bytes[name] = side.db_bytes()
        if side.table_bytes is not None:
            result.table_bytes[name] = side.table_bytes()
    return result


# -- driving -----------------------------------------------------------------------------------


Opener = Callable[[str], contextlib.AbstractContextManager[Side]]


@contextlib.contextmanager
def open_sides(stock: Opener, stock_target: str,
               mine: Opener, mine_target: str) -> Iterator[dict[str, Side]]:
    with stock(stock_target) as a, mine(mine_target) as b:
        yield {"stock": a, "steward": b}


@dataclass
class Row:
    scenario: str
    backend: str
    stock: float
    steward: float
    unit: str
    higher_is_better: bool

    def ratio(self) -> float:
        if self.higher_is_better:
            return self.steward / self.stock
        return self.stock / self.steward


def _chain_rows(backend: str, res: ChainResult, invocations: int) -> list[Row]:
    per = res.steps["stock"] // invocations
    label = f"chain: checkpoints/s ({invocations}x{per})"
    return [Row(label, backend, res.rate("stock"), res.rate("steward"), "/s", True)]


def _chat_rows(backend: str, res: ChatResult, turns: int) -> list[Row]:
    n = min(WINDOW, turns // 2)
    rows = [Row(f"chat: KiB after {turns} turns", backend, res.db_bytes["stock"],
                res.db_bytes["steward"], "B", False)]
    if res.table_bytes:
        rows.append(Row("chat: KiB, saver tables (dbstat)", backend,
                        res.table_bytes["stock"], res.table_bytes["steward"], "B", False))
    rows += [
        Row(f"chat: ms/turn, turns 1-{n}", backend, res.window_ms("stock", last=False),
            res.window_ms("steward", last=False), "ms", False),
        Row(f"chat: ms/turn, turns {turns - n + 1}-{turns}", backend,
            res.window_ms("stock", last=True), res.window_ms("steward", last=True), "ms", False),
    ]
    return rows


def _sqlite_paths(root: Path, tag: str) -> tuple[str, str]:
    d = root / tag
    d.mkdir()
    return str(d / "stock.db"), str(d / "steward.db")


def bench_sqlite(root: Path, invocations: int, turns: int, say: Callable[[str], None]) -> list[Row]:
    def stock(p: str) -> contextlib.AbstractContextManager[Side]:
        return stock_sqlite(Path(p))

    def mine(p: str) -> contextlib.AbstractContextManager[Side]:
        return steward_sqlite(Path(p))

    say("sqlite: chain")
    a, b = _sqlite_paths(root, "chain")
    with open_sides(stock, a, mine, b) as sides:
        chain = run_chain(sides, invocations)
    say("sqlite: chat")
    a, b = _sqlite_paths(root, "chat")
    with open_sides(stock, a, mine, b) as sides:
        chat = run_chat(sides, turns)
    return _chain_rows("sqlite", chain, invocations) + _chat_rows("sqlite", chat, turns)


def bench_postgres(pg_url: str | None, invocations: int, turns: int,
                   say: Callable[[str], None]) -> list[Row]:
    say("postgres: " + ("connecting" if pg_url else "starting a throwaway server"))
    with postgres_server(pg_url) as server:
        created: list[str] = []

        def fresh(prefix: str) -> str:
            url = server.create_database(prefix)
            created.append(url)
            return url

        try:
            say("postgres: chain")
            with open_sides(stock_postgres, fresh("bench_stock"),
                            steward_postgres, fresh("bench_steward")) as sides:
                chain = run_chain(sides, invocations)
            say("postgres: chat")
            with open_sides(stock_postgres, fresh("bench_stock"),
                            steward_postgres, fresh("bench_steward")) as sides:
                chat = run_chat(sides, turns)
        finally:
            for url in created:
                server.drop_database(url)
    return _chain_rows("postgres", chain, invocations) + _chat_rows("postgres", chat, turns)


def _fmt(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 1024:,.0f}"
    if unit == "ms":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _fs_type(path: Path) -> str:
    """The filesystem type the SQLite files live on (fsync on tmpfs is free)."""
    best, kind = "", "?"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--invocations", type=int, default=None,
                        help="chain invocations per side, each on a new thread (default 30)")
    parser.add_argument("--turns", type=int, default=None,
                        help="chat turns on one thread (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5 invocations and 30 turns unless given")
    parser.add_argument("--pg-url", default=None,
                        help="admin URL of a PostgreSQL server to create databases on "
                             "(default: start a throwaway server with tests/_pg.py)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--tmpdir", default=None,
                        help="directory for the SQLite files (default: the system temp dir)")
    args = parser.parse_args(argv)
    invocations = args.invocations or (5 if args.quick else 30)
    turns = args.turns or (30 if args.quick else 200)
    if invocations < 1 or turns < 2:
        parser.error("--invocations must be >= 1 and --turns >= 2")

    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=100)
    started = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s  {msg}[/dim]")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="steward-bench-", dir=args.tmpdir) as tmp:
        root = Path(tmp)
        fs = _fs_type(root.resolve())
        rows += bench_sqlite(root, invocations, turns, say)
    if not args.no_postgres:
        rows += bench_postgres(args.pg_url, invocations, turns, say)
    elapsed = time.perf_counter() - started

    table = Table(
        title="Checkpointer benchmark, durability=\"sync\"\n"
              "ratio > 1 means Steward is better "
              "(checkpoints/s: steward/stock; KiB and ms: stock/steward)",
        caption=f"SQLite files on {fs}; {os.cpu_count()} CPUs; "
                f"total run time {elapsed:.1f}s",
    )
    for col in ("scenario", "backend", "stock", "steward", "ratio"):
        left = col in ("scenario", "backend")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for row in rows:
        table.add_row(row.scenario, row.backend, _fmt(row.stock, row.unit),
                      _fmt(row.steward, row.unit), f"{row.ratio():.2f}x")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
