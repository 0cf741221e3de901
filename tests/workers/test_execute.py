"""``steward.workers.execute``: one submitted run, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _support import ALICE, ROOT, State
from langgraph.graph import END, START, StateGraph

import steward
from steward.jobs.graphs import Graphs, bind
from steward.workers import execute

pytestmark = pytest.mark.postgres


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
            latest = await saver.aget_tuple(
                {"configurable": {"thread_id": "T-1", "principal": ALICE}})
            found.append(latest.metadata["step"] if latest else None)
            return {"items": ["second"]}

        builder = StateGraph(State)
        builder.add_node("first", lambda state: {"items": ["first"]})
        builder.add_node("second", second)
        builder.add_edge(START, "first")
        builder.add_edge("first", "second")
        builder.add_edge("second", END)

        class Chain(Graphs):
            async def abuild(self, name: str, checkpointer: Any, store: Any,
                             config: Any) -> Any:
                return bind(builder, checkpointer, store)

        out = await execute(rt, Chain(ROOT / "langgraph.json", {"chain": "x.py:y"}), 1,
                            graph="chain", thread_id="T-1", principal=ALICE.to_dict(),
                            input={"items": []})
    assert out["items"] == ["first", "second"]
    assert found == [1], found  # step 1: "first" done, "second" next
