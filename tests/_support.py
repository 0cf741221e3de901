"""Shared test material: principals, a small graph, and raw database snapshots."""

from __future__ import annotations

import operator
import re
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt

from steward import Principal
from steward.audit.refusals import ACCESS_CHAIN
from steward.runtime import SCHEMAS
from steward.storage.migrations import META_DDL, statements

ALICE = Principal(id="alice", tenant="acme", roles=frozenset({"support"}))
BOB = Principal(id="bob", tenant="acme", roles=frozenset({"manager"}))
CAROL = Principal(id="carol", tenant="acme", roles=frozenset({"auditor"}))
DAVE = Principal(id="dave", tenant="acme", roles=frozenset({"support"}))
EVE = Principal(id="eve", tenant="globex", roles=frozenset({"manager", "admin"}))
ROLES = {"manager": "write", "auditor": "read", "admin": "admin"}

# tests/ itself, whichever directory a test module sits in: the shared helpers and the worker
# scripts that tests start by path (``SUPPORT / "_worker.py"``); and the repository above it.
SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent


def _schema_tables() -> tuple[str, ...]:
    """Every table Steward's migrations create, on either dialect, read from the migrations
    themselves: a table added later cannot be left out of the "changes nothing" snapshots."""
    scripts = [META_DDL, *(stmt for dialect in ("sqlite", "postgres") for schema in SCHEMAS
                           for migration in schema.migrations
                           for stmt in statements(dialect, migration))]
    found = re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", "\n".join(scripts), re.I)
    return tuple(sorted(set(found)))


TABLES = _schema_tables()


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    answer: Any


def _first(state: State) -> State:
    return {"items": ["first"]}


def _ask(state: State) -> State:
    return {"answer": interrupt({"type": "approval_request", "question": "ok?"})}


def _last(state: State) -> State:
    return {"items": ["last"]}


def approval_graph(checkpointer: Any) -> CompiledStateGraph[Any]:
    """first -> ask (interrupts) -> last."""
    builder = StateGraph(State)
    builder.add_node("first", _first)
    builder.add_node("ask", _ask)
    builder.add_node("last", _last)
    builder.add_edge(START, "first")
    builder.add_edge("first", "ask")
    builder.add_edge("ask", "last")
    builder.add_edge("last", END)
    return builder.compile(checkpointer=checkpointer)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of Steward's tables, read with a plain driver connection, but for the
    tenants' access chains (thread id ``access:<tenant>``), where a refusal of another
    tenant's principal is recorded on purpose (tests/audit/test_refusals.py checks them)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            for table in TABLES:
                if table in names:
                    out[table] = sorted(conn.execute(f"SELECT * FROM {table}"), key=repr)
        finally:
            conn.close()
    else:
        with psycopg.connect(url) as pg:
            names = {r[0] for r in pg.execute("SELECT tablename FROM pg_tables")}
            for table in TABLES:
                if table in names:
                    out[table] = sorted(pg.execute(f"SELECT * FROM {table}").fetchall(),
                                        key=repr)
    return {table: [r for r in rows if not str(r[0]).startswith(ACCESS_CHAIN)]
            for table, rows in out.items()}


def stored(url: str) -> dict[str, Any]:
    """What a refused request must not change: every table but the thread row's lease and
    timestamps (a run takes and releases the lease even when its resume is refused) and the
    audit chain, which records the refused attempt."""
    rows = snapshot(url)
    rows["steward_threads"] = [(r[0], r[1], r[2], r[5], r[6], r[7])
                               for r in rows["steward_threads"]]
    del rows["steward_audit"]
    return rows


def execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run raw SQL (``?`` placeholders) behind Steward's back, e.g. to tamper with a row."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def one_node(state: type, fn: Any) -> StateGraph[Any]:
    """A graph of one node, ``fn``, from START to END."""
    builder = StateGraph(state)
    builder.add_node("n", fn)
    builder.add_edge(START, "n")
    builder.add_edge("n", END)
    return builder
