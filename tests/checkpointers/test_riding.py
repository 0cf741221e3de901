"""A run's task writes ride with its next checkpoint: one commit per step under rt.config,
nothing lost or hidden on the way (steward/checkpointers/riding.py)."""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, execute
from langgraph.graph import END, START, StateGraph

import steward
from steward.checkpointers.saver import RIDE_FOR


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def _chain(checkpointer: Any, nodes: int = 3) -> Any:
    builder = StateGraph(State)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        builder.add_node(name, lambda s, name=name: {"items": [name]})
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=checkpointer)


def _fan_out(checkpointer: Any, slow: Callable[[State], State]) -> Any:
    """START -> fast and slow in one step -> END."""
    builder = StateGraph(State)
    builder.add_node("fast", lambda s: {"items": ["fast"]})
    builder.add_node("slow", slow)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "slow")
    builder.add_edge("fast", END)
    builder.add_edge("slow", END)
    return builder.compile(checkpointer=checkpointer)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    """Every transaction the drivers run: (operation, write)."""
    from steward.storage import drivers

    seen: list[tuple[str, bool]] = []
    for cls in (drivers.SqliteDriver, drivers.PostgresDriver):
        original = cls.run

        def run(self: Any, op: Any, *, write: bool, durable: bool = True,
                _original: Any = original) -> Any:
            seen.append((op.gi_code.co_name if hasattr(op, "gi_code") else "?", write))
            return _original(self, op, write=write, durable=durable)

        monkeypatch.setattr(cls, "run", run)
    yield seen


def _pending(rt: steward.Runtime, graph: Any, tid: str) -> list[list[tuple[str, Any]]]:
    """Each checkpoint's pending writes (channel, value), oldest first, sorted."""
    config = rt.config(tid, ALICE)
    return [sorted((w[1], w[2]) for w in tup.pending_writes or [])
            for tup in reversed(list(rt.checkpointer.list(config)))]


def test_a_step_commits_once_and_its_task_writes_are_all_kept(
        db_url: str, writes: list[tuple[str, bool]]) -> None:
    with steward.open(db_url) as rt:
        graph = _chain(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("warm", ALICE))
        writes.clear()
        assert graph.invoke({"items": []}, rt.config("T", ALICE))["items"] == ["n0", "n1", "n2"]
        # (Participants told of the run's start run nothing here.)
        ops = [name for name, write in writes if write and name != "run_started_op"]
        # Taking the lease, one put per checkpoint (5), giving the lease back: no transaction
        # of the task writes' own.
        assert "put_writes_op" not in ops
        assert ops.count("put_op") == 5 and len(ops) == 7, ops
        writes.clear()
        graph.invoke({"items": []}, {"configurable": {"thread_id": "plain", "principal": ALICE}})
        assert [name for name, write in writes if write].count("put_writes_op") == 4
        # What was kept is what a plain run keeps, checkpoint by checkpoint.
        assert _pending(rt, graph, "T") == _pending(rt, graph, "plain")


def test_writes_of_a_branch_that_finished_are_written_while_the_other_waits(
        db_url: str) -> None:
    seen: list[list[tuple[Any, ...]]] = []

    def slow(state: State) -> State:
        time.sleep(RIDE_FOR * 4)
        seen.append(execute(db_url, "SELECT channel, task_id, task_path FROM steward_writes "
                                    "WHERE thread_id = ?", ("T",)))
        return {"items": ["slow"]}

    with steward.open(db_url) as rt:
        graph = _fan_out(rt.checkpointer, slow)
        assert sorted(graph.invoke({"items": []}, rt.config("T", ALICE))["items"]) == \
            ["fast", "slow"]
    [during] = seen
    assert [channel for channel, _, path in during if path.endswith("fast")] == ["items"]
    assert not [path for _, _, path in during if path.endswith("slow")]


def test_a_read_of_the_thread_sees_the_writes_held_for_it(db_url: str) -> None:
    found: list[list[tuple[str, Any]]] = []

    with steward.open(db_url) as rt:

        def slow(state: State) -> State:
            time.sleep(RIDE_FOR / 4)  # the fast branch is done; its writes are held
            tup = rt.checkpointer.get_tuple(rt.config("T", ALICE))
            assert tup is not None
            found.append([(channel, value) for _, channel, value in tup.pending_writes or []])
            return {"items": ["slow"]}

        graph = _fan_out(rt.checkpointer, slow)
        graph.invoke({"items": []}, rt.config("T", ALICE))
    assert ("items", ["fast"]) in found[0]


def test_a_failed_run_keeps_the_writes_of_the_tasks_that_finished(db_url: str) -> None:
    def slow(state: State) -> State:
        time.sleep(RIDE_FOR / 4)
        raise ValueError("the slow branch failed")

    with steward.open(db_url) as rt:
        graph = _fan_out(rt.checkpointer, slow)
        with pytest.raises(ValueError, match="slow branch"):
            graph.invoke({"items": []}, rt.config("T", ALICE))
        # The run's end wrote the finished task's writes: a retry does not run it again.
        pending = rt.checkpointer.get_tuple(rt.config("T", ALICE))
        assert pending is not None
        assert ("items", ["fast"]) in [(c, v) for _, c, v in pending.pending_writes or []]
        assert rt.checkpointer.thread_info("T", ALICE)["status"] == "idle"
