"""Single writer per thread: ThreadBusy for a second run, leases that expire after a crash."""

from __future__ import annotations

import logging
import operator
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, BOB, EVE, ROLES, SUPPORT, execute, snapshot
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

import steward
from steward import ThreadBusy
from steward.checkpointers.saver import RIDE_FOR

WORKER = SUPPORT / "_worker.py"


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def _graph(checkpointer: object, middle: object) -> CompiledStateGraph[State]:
    builder = StateGraph(State)
    builder.add_node("first", lambda s: {"items": ["first"]})
    builder.add_node("hang", middle)  # type: ignore[call-overload]
    builder.add_edge(START, "first")
    builder.add_edge("first", "hang")
    builder.add_edge("hang", END)
    return builder.compile(checkpointer=checkpointer)


def test_second_run_of_a_busy_thread_fails_fast_and_the_first_is_unaffected(
        rt: steward.Runtime) -> None:
    entered, proceed = threading.Event(), threading.Event()

    def slow(state: State) -> State:
        entered.set()
        assert proceed.wait(10)
        return {"items": ["slow"]}

    graph = _graph(rt.checkpointer, slow)
    results: list[object] = []
    first = threading.Thread(
        target=lambda: results.append(graph.invoke({"items": []}, rt.config("T1", ALICE))))
    first.start()
    assert entered.wait(10)
    started = time.monotonic()
    with pytest.raises(ThreadBusy) as busy:
        graph.invoke({"items": ["intruder"]}, rt.config("T1", BOB))
    assert time.monotonic() - started < 2, "ThreadBusy must be immediate, not a wait"
    assert busy.value.thread_id == "T1" and "another run" in str(busy.value)
    info = rt.checkpointer.thread_info("T1", ALICE)
    assert info is not None and info["status"] == "running" and info["leased"]
    proceed.set()
    first.join(10)
    assert results == [{"items": ["first", "slow"]}]  # the intruder's input never landed
    info = rt.checkpointer.thread_info("T1", ALICE)
    assert info is not None and info["status"] == "idle" and not info["leased"]
    # once the first run is over, the next one proceeds at once
    assert graph.invoke({"items": ["next"]}, rt.config("T1", BOB))["items"][-1] == "slow"


def test_a_failed_run_releases_its_lease(rt: steward.Runtime) -> None:
    def boom(state: State) -> State:
        raise RuntimeError("tool failed")

    graph = _graph(rt.checkpointer, boom)
    with pytest.raises(RuntimeError, match="tool failed"):
        graph.invoke({"items": []}, rt.config("T1", ALICE))
    ok = _graph(rt.checkpointer, lambda s: {"items": ["fixed"]})
    assert ok.invoke(None, rt.config("T1", ALICE))["items"] == ["first", "fixed"]


def test_the_heartbeat_keeps_a_long_node_s_lease(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, lease_ttl=0.6) as rt:
        entered, proceed = threading.Event(), threading.Event()

        def long_node(state: State) -> State:
            entered.set()
            assert proceed.wait(10)
            return {"items": ["long"]}

        graph = _graph(rt.checkpointer, long_node)
        worker = threading.Thread(target=graph.invoke,
                                  args=({"items": []}, rt.config("T1", ALICE)))
        worker.start()
        assert entered.wait(10)
        time.sleep(1.5)  # two and a half lease lifetimes
        with pytest.raises(ThreadBusy):
            graph.invoke({"items": []}, rt.config("T1", BOB))
        proceed.set()
        worker.join(10)


def test_a_run_that_lost_its_lease_is_fenced(db_url: str) -> None:
    with steward.open(db_url, lease_ttl=30) as one, steward.open(db_url, lease_ttl=30) as two:
        graph = _graph(one.checkpointer, lambda s: {"items": ["x"]})
        graph.invoke({"items": []}, one.config("T1", ALICE))
        head = graph.get_state(one.config("T1", ALICE)).config
        one.checkpointer.acquire_lease("T1", "run-one", ALICE)
        # run-one stalls past its lease; another worker takes the thread over
        execute(db_url, "UPDATE steward_threads SET lease_expires_at = 0 WHERE thread_id = ?",
                ("T1",))
        two.checkpointer.acquire_lease("T1", "run-two", ALICE)
        before = snapshot(db_url)
        config: RunnableConfig = {"configurable": {**head["configurable"], "principal": ALICE}}
        # An ordinary task's writes wait for the step's checkpoint (they ride with it): the
        # checkpoint is refused, and the writes with it.
        one.checkpointer.put_writes(config, [("items", ["stale"])], "task-1")
        with pytest.raises(ThreadBusy, match="lost its lease"):
            one.checkpointer.put(config, empty_checkpoint(), {"source": "loop", "step": 9}, {})
        # Writes that change the thread row are refused at once.
        with pytest.raises(ThreadBusy, match="lost its lease"):
            one.checkpointer.put_writes(config, [(ERROR, ValueError("stale"))], "task-1")
        # Writes held when no checkpoint follows are written within RIDE_FOR, fenced alike.
        one.checkpointer.put_writes(config, [("items", ["stale again"])], "task-2")
        time.sleep(RIDE_FOR * 3)
        assert snapshot(db_url) == before
        assert one.checkpointer.threads.renew_leases() == ["T1"]  # the heartbeat notices too
        two.checkpointer.release_lease("T1", "run-two")


def _holding(db_url: str, tmp_path: Path, lease_ttl: float) -> subprocess.Popen[bytes]:
    """A worker process (tests/_worker.py) running thread T1, inside its second node."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), db_url, "T1", str(lease_ttl), str(ready)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, "worker died early"
        assert time.monotonic() < deadline, "worker never reached its node"
        time.sleep(0.05)
    return proc


def test_the_lease_of_a_killed_process_ends_at_once(db_url: str, tmp_path: Path) -> None:
    """Its holder's process is gone (its PostgreSQL session ended; on SQLite, its pid on this
    host): the thread says "stalled" and the next run takes it over within a second, not
    after lease_ttl (30 s here)."""
    proc = _holding(db_url, tmp_path, 30)
    try:
        with steward.open(db_url, thread_roles=ROLES) as rt:
            graph = _graph(rt.checkpointer, lambda s: {"items": ["recovered"]})
            with pytest.raises(ThreadBusy):  # alive: its lease holds
                graph.invoke(None, rt.config("T1", BOB))
            assert rt.checkpointer.thread_info("T1", ALICE)["status"] == "running"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed_at = time.monotonic()
            deadline = killed_at + 5
            while rt.checkpointer.thread_info("T1", ALICE)["status"] != "stalled":
                assert time.monotonic() < deadline, "the dead run's thread never said stalled"
                time.sleep(0.02)
            assert [t["thread_id"] for t in rt.checkpointer.list_threads(
                ALICE, status="stalled")] == ["T1"]
            assert rt.checkpointer.list_threads(ALICE, status="running") == []
            state = graph.get_state(rt.config("T1", ALICE))
            assert state.next == ("hang",)  # the crash happened inside the second node
            result = graph.invoke(None, rt.config("T1", BOB))
            taken_over = time.monotonic() - killed_at
            assert result["items"] == ["first", "recovered"]
            assert taken_over < 1.0, f"took {taken_over:.2f}s to take the thread over"
            assert rt.checkpointer.thread_info("T1", ALICE)["status"] == "idle"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_hung_holder_keeps_its_lease_until_it_runs_out(db_url: str, tmp_path: Path) -> None:
    """A stopped process keeps its pid and its session: nobody can tell it is stuck, so its
    lease ends only after lease_ttl (no heartbeat renews it), as on another machine."""
    proc = _holding(db_url, tmp_path, 1.5)
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        with steward.open(db_url, thread_roles=ROLES) as rt:
            graph = _graph(rt.checkpointer, lambda s: {"items": ["recovered"]})
            with pytest.raises(ThreadBusy):
                graph.invoke(None, rt.config("T1", BOB))
            while True:
                try:
                    result = graph.invoke(None, rt.config("T1", BOB))
                    break
                except ThreadBusy:
                    assert time.monotonic() - stopped_at < 10, "the lease never ran out"
                    time.sleep(0.1)
            assert time.monotonic() - stopped_at >= 1.0
            assert result["items"] == ["first", "recovered"]
    finally:
        proc.kill()
        proc.wait(10)


def test_a_refused_run_raises_without_langchain_logging_it_twice(
        rt: steward.Runtime, caplog: pytest.LogCaptureFixture) -> None:
    from _support import EVE

    graph = _graph(rt.checkpointer, lambda s: {"items": ["x"]})
    graph.invoke({"items": []}, rt.config("T1", ALICE))
    with caplog.at_level(logging.WARNING), pytest.raises(steward.ThreadAccessDenied):
        graph.invoke({"items": []}, rt.config("T1", EVE))
    assert not [r for r in caplog.records if "LeaseHandler" in r.getMessage()]


# -- what a run's lease costs: its bookkeeping rides with what the run does anyway -------------


def _ops(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, bool]]:
    """Every operation the drivers run that sends something: (name, write, first statement
    alone)."""
    from steward.storage import drivers
    from steward.storage.ops import Stmt

    seen: list[tuple[str, bool, bool]] = []
    for cls in (drivers.SqliteDriver, drivers.PostgresDriver):
        original = cls.run

        def run(self: object, op: Any, *, write: bool, durable: bool = True,
                _original: Any = original) -> Any:
            def watched() -> Any:
                try:
                    stmt = next(op)
                except StopIteration as stop:
                    return stop.value
                seen.append((op.gi_code.co_name, write, isinstance(stmt, Stmt) and stmt.alone))
                result = yield stmt
                while True:
                    try:
                        stmt = op.send(result)
                    except StopIteration as stop:
                        return stop.value
                    result = yield stmt

            return _original(self, watched(), write=write, durable=durable)

        monkeypatch.setattr(cls, "run", run)
    return seen


def test_the_lease_reads_the_thread_and_the_run_does_not_read_it_again(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with steward.open(db_url) as rt:
        graph = _graph(rt.checkpointer, lambda s: {"items": ["x"]})
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        seen = _ops(monkeypatch)
        assert graph.invoke({"items": ["again"]}, rt.config("T1", ALICE))["items"] == \
            ["first", "x", "again", "first", "x"]
        assert [name for name, write, _ in seen if not write] == []  # no get_tuple of its own


def test_a_new_threads_run_is_three_round_trips_with_durability_exit(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Taking the lease of a new thread, the run's one checkpoint, and the run's end with its
    last audit events: one statement each on PostgreSQL."""
    with steward.open(db_url) as rt:
        graph = _graph(rt.checkpointer, lambda s: {"items": ["x"]})
        graph.invoke({"items": []}, rt.config("warm", ALICE, durability="exit"))
        seen = _ops(monkeypatch)
        graph.invoke({"items": []}, rt.config("T1", ALICE, durability="exit"))
        assert len(seen) == 3, seen
        if db_url.startswith("postgresql"):
            assert [alone for _, _, alone in seen] == [True, True, True]
        assert rt.audit.verify("T1") > 0  # its chain, head included, verifies
        assert execute(db_url, "SELECT status, lease_owner FROM steward_threads "
                               "WHERE thread_id = ?", ("T1",)) == [("idle", None)]


@pytest.mark.postgres
def test_a_new_threads_lease_in_one_statement_leaves_the_row_the_careful_way_leaves(
        pg_url: str) -> None:
    from _support import execute as sql

    with steward.open(pg_url) as rt:
        rt.checkpointer.acquire_lease("fast", "run-1", ALICE, ttl=60, subjects=["c@x.io"])
        rt.checkpointer.driver.optimistic = False  # type: ignore[misc]
        rt.checkpointer.acquire_lease("careful", "run-2", ALICE, ttl=60, subjects=["c@x.io"])
        cols = ("tenant, owner, status, lease_epoch, rev, run_as, waiting_on, resumed_by, "
                "audit_seq, (lease_holder IS NOT NULL), (expires_at - created_at)::int, "
                "(lease_expires_at - created_at)::int")
        rows = {tid: sql(pg_url, f"SELECT {cols} FROM steward_threads WHERE thread_id = ?",
                         (tid,)) for tid in ("fast", "careful")}
        assert rows["fast"] == rows["careful"]
        assert sql(pg_url, "SELECT thread_id FROM steward_subjects ORDER BY 1") == \
            [("careful",), ("fast",)]
        rt.checkpointer.release_lease("fast", "run-1")
        rt.checkpointer.release_lease("careful", "run-2")


def test_a_run_that_lost_its_lease_ends_without_touching_the_new_holders(db_url: str) -> None:
    with steward.open(db_url, lease_ttl=30) as one, steward.open(db_url, lease_ttl=30) as two:
        one.checkpointer.acquire_lease("T1", "run-one", ALICE)
        execute(db_url, "UPDATE steward_threads SET lease_expires_at = 0 WHERE thread_id = ?",
                ("T1",))
        two.checkpointer.acquire_lease("T1", "run-two", ALICE)
        one.audit.record("T1", "node_end", {"late": True}, principal=ALICE)
        one.checkpointer.release_lease("T1", "run-one")  # fenced: changes nothing
        assert execute(db_url, "SELECT lease_owner FROM steward_threads WHERE thread_id = ?",
                       ("T1",)) == [("run-two",)]
        assert [e.kind for e in two.audit.events("T1", ALICE)] == []
        two.checkpointer.release_lease("T1", "run-two")


def test_what_the_lease_read_is_never_served_to_another_principal(db_url: str) -> None:
    """The lease's read of the latest checkpoint serves its own run's first read only: a read
    by anyone else goes to the database, under the access rule."""
    from steward import ThreadAccessDenied

    with steward.open(db_url) as rt:
        graph = _graph(rt.checkpointer, lambda s: {"items": ["x"]})
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        rt.checkpointer.acquire_lease("T1", "run-2", ALICE)
        with pytest.raises(ThreadAccessDenied):
            rt.checkpointer.get_tuple({"configurable": {"thread_id": "T1", "principal": EVE}})
        # Its own run's first read still gets it, once.
        own = rt.checkpointer.get_tuple({"configurable": {"thread_id": "T1",
                                                          "principal": ALICE}})
        assert own is not None and own.checkpoint["channel_values"]["items"] == ["first", "x"]
        rt.checkpointer.release_lease("T1", "run-2")


def test_a_runs_steady_writes_are_never_let_through_for_another_principal(db_url: str) -> None:
    """While a run writes its thread step after step, the saver trusts its verdict on the
    thread's row for that run's principal; a write by anyone else is checked in full."""
    from steward import ThreadAccessDenied

    with steward.open(db_url) as rt:
        graph = _graph(rt.checkpointer, lambda s: {"items": ["x"]})
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        head = graph.get_state(rt.config("T1", ALICE)).config["configurable"]
        rt.checkpointer.acquire_lease("T1", "run-2", ALICE)
        checkpoint = empty_checkpoint()
        for step in (5, 6):  # the second write finds the row the first one was let through on
            checkpoint = {**empty_checkpoint(), "id": f"{checkpoint['id']}{step}"}
            rt.checkpointer.put({"configurable": {**head, "principal": ALICE}}, checkpoint,
                                {"source": "loop", "step": step}, {})
        before = snapshot(db_url)
        with pytest.raises(ThreadAccessDenied):
            rt.checkpointer.put({"configurable": {**head, "principal": EVE}},
                                {**empty_checkpoint(), "id": f"{checkpoint['id']}7"},
                                {"source": "loop", "step": 7}, {})
        assert snapshot(db_url) == before
        rt.checkpointer.release_lease("T1", "run-2")
