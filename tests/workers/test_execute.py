"""``steward.workers.execute``: one submitted run, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from _support import ALICE, ROOT, State
from langgraph.graph import END, START, StateGraph

import steward
from steward.jobs.graphs import Graphs, bind
from steward.workers import execute

pytestmark = pytest.mark.postgres
WHERE: Any = {"configurable": {"thread_id": "T-1", "principal": ALICE}}


def _chain(second: Any = None) -> Graphs:
    """The graphs a worker would load: one, ``first`` then ``second``."""
    builder = StateGraph(State)
    builder.add_node("first", lambda state: {"items": ["first"]})
    builder.add_node("second", second or (lambda state: {"items": ["second"]}))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)

    class Chain(Graphs):
        async def abuild(self, name: str, checkpointer: Any, store: Any, config: Any) -> Any:
            return bind(builder, checkpointer, store)

    return Chain(ROOT / "langgraph.json", {"chain": "x.py:y"})


async def test_a_worker_runs_each_step_after_the_checkpoint_that_scheduled_it_is_written(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An effect's call site is named after its task, whose id comes from the checkpoint that
    scheduled it. With LangGraph's default durability ("async") that checkpoint is written
    while the task already runs: a worker killed right after the effect could lose it, the
    next attempt would schedule the task again under another id, and the effect would act
    twice under two keys (bench/workers.py's takeover caught it). A slow commit makes the
    window wide: the second node must find the checkpoint that scheduled it already written."""
    found: list[Any] = []
    async with steward.aopen(pg_url) as rt:
        saver = rt.checkpointer
        put = saver.aput

        async def slow_put(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.2)
            return await put(*args, **kwargs)

        monkeypatch.setattr(saver, "aput", slow_put)

        async def second(state: State) -> State:
            latest = await saver.aget_tuple(WHERE)
            found.append(latest.metadata["step"] if latest else None)
            return {"items": ["second"]}

        out = await execute(rt, _chain(second), 1, graph="chain", thread_id="T-1",
                            principal=ALICE.to_dict(), input={"items": []})
    assert out["items"] == ["first", "second"]
    assert found == [1], found  # step 1: "first" done, "second" next


def _die_holding_the_lease(url: str) -> None:
    """A process takes T-1's lease as a run starting would, and dies before any checkpoint."""
    dies = ("import os, steward\n"
            f"rt = steward.open({url!r})\n"
            f"rt.checkpointer.acquire_lease('T-1', 'run-1', steward.Principal.parse("
            f"{ALICE.to_dict()!r}))\n"
            "os._exit(9)  # as a SIGKILL would: no lease given back\n")
    done = subprocess.run([sys.executable, "-c", dies], cwd=ROOT, check=False, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 9, done.stderr


async def test_a_run_that_died_before_its_first_checkpoint_is_run_again(pg_url: str) -> None:
    """A run takes its thread's lease before it writes its first checkpoint: a worker killed
    between the two leaves a thread that reads stalled and has nothing to continue from. The
    job's next attempt must run its input (bench/workers.py's kill storm caught attempts
    that called rt.aresume on it and failed for good with EmptyInputError)."""
    await asyncio.to_thread(_die_holding_the_lease, pg_url)
    async with steward.aopen(pg_url) as rt:
        info = await rt.checkpointer.athread_info("T-1", ALICE)
        assert info is not None and info["status"] == "stalled", info
        assert await rt.checkpointer.aget_tuple(WHERE) is None
        out = await execute(rt, _chain(), 7, graph="chain", thread_id="T-1",
                            principal=ALICE.to_dict(), input={"items": []}, retried=True)
        assert out["items"] == ["first", "second"]
        info = await rt.checkpointer.athread_info("T-1", ALICE)
        assert info is not None and info["status"] == "idle", info
