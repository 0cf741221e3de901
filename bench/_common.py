"""Shared pieces of the checkpointer benchmark: graphs, backends, statistics.

See ``bench/checkpointer.py`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import random
import sqlite3
import statistics
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt

import steward

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    Graph = CompiledStateGraph[Any, Any, Any, Any]

REPO = Path(__file__).resolve().parent.parent
CHAIN_NODES = 10
PAYLOAD_BYTES = 100
MESSAGE_BYTES = 500

STOCK_PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes",
                   "checkpoint_migrations")
STOCK_SQLITE_TABLES = ("checkpoints", "writes")
STEWARD_PATTERN = r"steward\_%"  # LIKE pattern, with "\" as escape character

SIDES = ("stock", "steward")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz     "

Say = Callable[[str], None]


def order(i: int) -> tuple[str, ...]:
    """Which side goes first in step ``i``: it flips every step."""
    return flipped(SIDES, i)


def flipped(names: Sequence[str], i: int) -> tuple[str, ...]:
    """``names`` in their order in step ``i``, reversed in every other step."""
    return tuple(names) if i % 2 == 0 else tuple(names)[::-1]


def config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the values <= it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- graphs ------------------------------------------------------------------------------------


class ChainState(TypedDict):
    counter: int
    payload: str


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class ApprovalState(TypedDict, total=False):
    request: str
    approved: str
    done: bool


class ChainNode:
    """Node ``index`` of the chain: counter + 1 and a fresh 100-byte payload."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, state: ChainState) -> dict[str, Any]:
        counter = state["counter"] + 1
        text = f"node {self.index} counter {counter} "
        return {"counter": counter, "payload": (text * 8)[:PAYLOAD_BYTES]}


def chain_graph(saver: BaseCheckpointSaver[Any], nodes: int = CHAIN_NODES) -> Graph:
    """``nodes`` nodes in a chain (10): a run stores ``nodes + 2`` checkpoints with durability
    "sync" (its input, the start, one per node)."""
    builder = StateGraph(ChainState)
    names = [f"n{i}" for i in range(nodes)]
    for i, name in enumerate(names):
        builder.add_node(name, ChainNode(i))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=saver)


CHAIN_START: ChainState = {"counter": 0, "payload": ""}


def _chat_node(state: ChatState) -> dict[str, Any]:
    return {}  # the turn's message arrives with the input; the node only makes it a superstep


def chat_graph(saver: BaseCheckpointSaver[Any]) -> Graph:
    builder = StateGraph(ChatState)
    builder.add_node("respond", _chat_node)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=saver)


def message(turn: int) -> HumanMessage:
    # Seeded pseudo-random letters: the same on both sides, and not squeezed to nothing by
    # PostgreSQL's TOAST compression the way a repeated string would be.
    rng = random.Random(turn)
    text = "".join(rng.choice(_ALPHABET) for _ in range(MESSAGE_BYTES))
    return HumanMessage(content=text, id=f"msg-{turn:05d}")


def _prepare(state: ApprovalState) -> dict[str, Any]:
    return {"request": f"{state.get('request', '')} (prepared)"}


def _ask(state: ApprovalState) -> dict[str, Any]:
    answer = interrupt({"type": "approval_request"})
    return {"approved": answer}


def _finish(state: ApprovalState) -> dict[str, Any]:
    return {"done": True}


def approval_graph(saver: BaseCheckpointSaver[Any]) -> Graph:
    """A -> B (waits on ``interrupt({"type": "approval_request"})``) -> C."""
    builder = StateGraph(ApprovalState)
    builder.add_node("a", _prepare)
    builder.add_node("b", _ask)
    builder.add_node("c", _finish)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


# -- backends ----------------------------------------------------------------------------------


@dataclass
class Side:
    """An open checkpointer plus a way to measure how much its database holds."""

    saver: BaseCheckpointSaver[Any]
    db_bytes: Callable[[], int]
    table_bytes: Callable[[], int] | None = None  # SQLite only: the saver's tables alone
    runtime: Any = None  # Steward's sides: the runtime around the saver (rt.config)


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

        name = database_of(url)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def database_of(url: str) -> str:
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


def sqlite_tables_bytes(path: Path, pattern: str) -> dict[str, int]:
    """Per table whose name is LIKE ``pattern`` (``\\`` escapes): its pages and its indexes'."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT m.tbl_name, coalesce(sum(d.pgsize), 0) FROM sqlite_master AS m "
            "JOIN dbstat AS d ON d.name = m.name WHERE m.tbl_name LIKE ? ESCAPE '\\' "
            "GROUP BY m.tbl_name", (pattern,)).fetchall()
    return {str(name): int(size) for name, size in rows}


@contextlib.contextmanager
def stock_sqlite(target: str) -> Iterator[Side]:
    path = Path(target)
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
def steward_sqlite(target: str, **options: Any) -> Iterator[Side]:
    path = Path(target)
    with steward.open(f"sqlite:///{path}", **options) as rt:
        yield Side(rt.checkpointer, lambda: sqlite_file_bytes(path),
                   lambda: sqlite_table_bytes(path, "tbl_name LIKE ? ESCAPE '\\'",
                                              (STEWARD_PATTERN,)), rt)


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
        raise RuntimeError(f"no saver tables found in {database_of(url)}")
    return int(size)


def pg_tables_bytes(url: str, pattern: str) -> dict[str, int]:
    """Per table whose name is LIKE ``pattern`` (``\\`` escapes): pg_total_relation_size."""
    import psycopg

    query = ("SELECT tablename, pg_total_relation_size("
             "format('%%I.%%I', schemaname, tablename)::regclass) FROM pg_tables "
             "WHERE schemaname = current_schema() AND tablename LIKE %s ESCAPE '\\'")
    with psycopg.connect(url, autocommit=True) as conn:
        return {str(name): int(size) for name, size in conn.execute(query, (pattern,))}


@contextlib.contextmanager
def stock_postgres(url: str) -> Iterator[Side]:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        yield Side(saver, lambda: pg_table_bytes(url, "tablename = ANY(%s)",
                                                 list(STOCK_PG_TABLES)))


@contextlib.contextmanager
def steward_postgres(url: str, **options: Any) -> Iterator[Side]:
    with steward.open(url, **options) as rt:
        yield Side(rt.checkpointer, lambda: pg_table_bytes(
            url, "tablename LIKE %s ESCAPE '\\'", STEWARD_PATTERN), runtime=rt)


def pg_settings(url: str) -> dict[str, str]:
    """The server settings that decide what a commit costs."""
    import psycopg

    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
             "full_page_writes")
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in names}


def fs_type(path: Path) -> str:
    """The filesystem type the SQLite files live on (fsync on tmpfs is free)."""
    best, kind = "", "?"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


# -- command line: what the benchmarks share ---------------------------------------------------


def bench_parser(doc: str | None, scenarios: Sequence[str]) -> argparse.ArgumentParser:
    """A benchmark's parser with the options every one of them takes: ``--quick``, ``--only``
    (one of ``scenarios``), ``--pg-url``, ``--no-postgres`` and ``--tmpdir``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    opt = parser.add_argument
    opt("--quick", action="store_true",
        help="smoke run with small numbers everywhere (options given explicitly still win)")
    opt("--only", default=None, metavar="SCENARIO[,SCENARIO]",
        help=f"run only these scenarios, of: {', '.join(scenarios)}")
    opt("--pg-url", default=None,
        help="admin URL of a PostgreSQL server to create databases on "
             "(default: start a throwaway server with tests/_pg.py)")
    opt("--no-postgres", action="store_true", help="skip PostgreSQL")
    opt("--tmpdir", default=None,
        help="directory for the SQLite files (default: the system temp dir)")
    return parser


def counts_and_only(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    full: dict[str, int], quick: dict[str, int],
                    scenarios: Sequence[str]) -> tuple[dict[str, int], frozenset[str]]:
    """The counts (each option given, else the full or quick default) and the scenarios to
    run; ``parser.error`` for an unknown scenario or a count below 1 (``turns`` below 2)."""
    base = quick if args.quick else full
    values = {k: getattr(args, k) if getattr(args, k) is not None else v
              for k, v in base.items()}
    only = frozenset(scenarios)
    if args.only:
        only = frozenset(x.strip() for x in args.only.split(",") if x.strip())
        unknown = only - set(scenarios)
        if unknown or not only:
            parser.error(f"--only: unknown scenario(s) {sorted(unknown)}; "
                         f"choose from {', '.join(scenarios)}")
    if min(values.values()) < 1 or values.get("turns", 2) < 2:
        parser.error("all counts must be >= 1, and --turns >= 2")
    return values, only
