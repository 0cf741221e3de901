"""Identity queries use indexes (issue #3), and small values ride inline in the checkpoint
(older schemas upgrading in place: storage/test_migrations.py).

The plans are read with the database's own EXPLAIN. On PostgreSQL sequential scans are priced
out (``enable_seqscan = off``): the planner then still scans when no index can serve the query,
so a "Seq Scan" in the plan means a missing index, not a small table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from _support import ALICE, BOB, CAROL, approval_graph, execute

import steward
from steward.checkpointers.reading import list_op
from steward.checkpointers.saver import StewardSaver
from steward.storage.ops import Stmt


def _first_stmt(op: Any) -> Stmt:
    stmt = next(op)
    assert isinstance(stmt, Stmt)
    op.close()
    return stmt


def _plan(url: str, stmt: Stmt) -> str:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {stmt.sql}", stmt.params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET enable_seqscan = off")
        sql = stmt.sql.replace("%", "%%").replace("?", "%s")
        rows = pg.execute(f"EXPLAIN {sql}", stmt.params).fetchall()
    return "\n".join(r[0] for r in rows)


def _assert_indexed(url: str, stmt: Stmt, index: str | None = None) -> None:
    """Every table is reached through an index (``index``, when named), none is scanned."""
    plan = _plan(url, stmt)
    if url.startswith("sqlite:///"):
        # SQLite says SEARCH for index look-ups; json_each's VIRTUAL TABLE steps walk one
        # row's JSON value (what a thread waits on), not a table.
        tables = [line for line in plan.splitlines() if "VIRTUAL TABLE" not in line]
        assert not [line for line in tables if "SCAN " in line], plan
        assert index is None or f"INDEX {index} " in plan, plan
    else:
        assert "Seq Scan" not in plan and "Index" in plan, plan
        assert index is None or f" {index} " in plan, plan


def _saver(rt: steward.Runtime) -> StewardSaver:
    saver = rt.checkpointer
    assert isinstance(saver, StewardSaver)
    return saver


def _fill(rt: steward.Runtime) -> None:
    graph = approval_graph(rt.checkpointer)
    for i in range(3):
        graph.invoke({"items": []}, rt.config(f"alice-{i}", ALICE))
    graph.invoke({"items": []}, rt.config("carol-0", CAROL))


def test_listing_threads_by_tenant_owner_and_waiting_uses_indexes(rt: steward.Runtime,
                                                                  db_url: str) -> None:
    _fill(rt)
    saver = _saver(rt)
    # A manager reads the whole tenant; a support agent only its own threads.
    _assert_indexed(db_url, _first_stmt(saver.threads._threads_op(BOB, None, None, 100)),
                    "steward_threads_tenant")
    # (PostgreSQL's planner, costing a handful of rows, may serve her own threads through
    # the tenant's status index instead: an index either way.)
    _assert_indexed(db_url, _first_stmt(saver.threads._threads_op(ALICE, None, None, 100)),
                    "steward_threads_owner" if db_url.startswith("sqlite") else None)
    # ... and, with no grant, the threads within her reach: resumed by her vote, or waiting
    # on a role of hers.
    _assert_indexed(db_url, _first_stmt(saver.threads._threads_op(ALICE, None, None, 100)),
                    "steward_threads_resumed")
    _assert_indexed(db_url, _first_stmt(saver.threads._threads_op(ALICE, None, None, 100)),
                    "steward_threads_status")
    # The threads waiting on someone (an approval): status "interrupted".
    _assert_indexed(db_url, _first_stmt(saver.threads._threads_op(BOB, None, "interrupted", 100)),
                    "steward_threads_status")
    waiting = saver.list_threads(BOB, status="interrupted")
    assert sorted(t["thread_id"] for t in waiting) == ["alice-0", "alice-1", "alice-2",
                                                       "carol-0"]
    assert [t["thread_id"] for t in saver.list_threads(ALICE)] == ["alice-2", "alice-1",
                                                                   "alice-0"]


def test_listing_checkpoints_across_threads_uses_indexes(rt: steward.Runtime,
                                                         db_url: str) -> None:
    _fill(rt)
    saver = _saver(rt)
    config = rt.config("unused", BOB)
    del config["configurable"]["thread_id"]
    # Within the caller's tenant (the thread table) and by writer (a metadata index): the
    # planner may start from either, but scans neither table.
    _assert_indexed(db_url, _first_stmt(list_op(saver, config, {"principal_id": "carol"},
                                                       None, 10)))
    _assert_indexed(db_url, _first_stmt(list_op(saver, config, {"tenant": "acme"}, None, 10)))
    found = list(saver.list(config, filter={"principal_id": "carol"}))
    assert found and {c.config["configurable"]["thread_id"] for c in found} == {"carol-0"}
    by_tenant = list(saver.list(config, filter={"tenant": "acme"}))
    assert {c.config["configurable"]["thread_id"] for c in by_tenant} == {
        "alice-0", "alice-1", "alice-2", "carol-0"}


@pytest.mark.parametrize("value", [0, -1, 2**63, 1.5, True, None, "x" * 256, b"\x00" * 10])
def test_small_values_ride_in_the_checkpoint_and_read_back_exactly(db_url: str,
                                                                   value: Any) -> None:
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class S(TypedDict, total=False):
        small: Any
        big: Any

    def node(state: S) -> S:
        return {"small": value, "big": "y" * 257}

    builder = StateGraph(S)
    builder.add_node("n", node)
    builder.add_edge(START, "n")
    builder.add_edge("n", END)
    with steward.open(db_url) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        graph.invoke({}, rt.config("T", ALICE))
        blobs = {r[0] for r in execute(db_url, "SELECT channel FROM steward_blobs "
                                       "WHERE thread_id = 'T'")}
        assert "small" not in blobs and "big" in blobs
    with steward.open(db_url) as rt:
        state = builder.compile(checkpointer=rt.checkpointer).get_state(rt.config("T", ALICE))
        assert state.values == {"small": value, "big": "y" * 257}
        assert type(state.values["small"]) is type(value)


def test_what_a_principal_may_approve_is_found_by_index(rt: steward.Runtime,
                                                        db_url: str) -> None:
    records = rt.guardrails.records
    _assert_indexed(db_url, _first_stmt(records.pending(BOB, 10)), "steward_approvals_pending")
    due = _first_stmt(records.due(0.0))
    _assert_indexed(db_url, due, "steward_approvals_expiry")
