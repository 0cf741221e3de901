"""``rt.submit`` checks a run before anything is queued (a steward.errors type, the jobs table
unchanged), and the langgraph.json loader finds graphs by name as the LangGraph server does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _support import ALICE, BOB, EVE, ROLES, ROOT, SUPPORT, execute
from langgraph.types import Command

import steward
from steward.examples import WORKFLOWS
from steward.jobs.graphs import Graphs

GRAPHS = {"slow": f"{SUPPORT / '_submitted.py'}:builder"}


def _jobs(url: str) -> list[tuple[Any, ...]]:
    return execute(url, "SELECT id, task_name, args, status FROM procrastinate_jobs ORDER BY id")


@pytest.mark.postgres
async def test_bad_submissions_are_refused_and_nothing_is_queued(
        pg_url: str, tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {**GRAPHS, "refund":
                                             f"{ROOT}/steward/server/runtime.py:refund_graph"}}))
    spec = WORKFLOWS["refund"]
    with steward.open(pg_url, graphs=config, thread_roles=ROLES, policy=spec.policy()) as rt:
        graph = spec.build().compile(checkpointer=rt.checkpointer, store=rt.store)
        out = graph.invoke(spec.input(dict(spec.defaults), "refund"), rt.config("R", ALICE))
        assert out["__interrupt__"], out  # waits for a manager's approval
        rt._queue().ensure_schema()
        before = _jobs(pg_url)
        refusals: list[tuple[type[Exception], str, Any, Any, str]] = [
            (steward.ConfigError, "nope", {"order_id": "1"}, ALICE, "unknown graph 'nope'"),
            (steward.ThreadAccessDenied, "refund", {"order_id": "1"}, EVE, ""),
            (steward.ConfigError, "slow", "refund it", ALICE, "dict input or a Command"),
            (steward.ConfigError, "slow", {"at": object()}, ALICE, "must be JSON"),
            (steward.ConfigError, "refund", Command(goto="refund"), BOB, "may only resume"),
            # Four eyes: the requester may not approve its own request.
            (steward.ApprovalInvalid, "refund", Command(resume={"decision": "approve"}),
             ALICE, ""),
            (steward.ThreadAccessDenied, "refund", Command(resume={"decision": "approve"}),
             EVE, ""),
            (steward.ConfigError, "refund", {"order_id": "1"}, {"id": "x"}, ""),
        ]
        for error, name, payload, who, says in refusals:
            thread = "R" if name == "refund" else "S"
            with pytest.raises(error, match=says or None):
                rt.submit(name, thread, payload, who)
            with pytest.raises(error, match=says or None):
                await rt.asubmit(name, thread, payload, who)
        assert _jobs(pg_url) == before
        # A valid vote is queued, with the approver as its principal, locked on its thread.
        handle = rt.submit("refund", "R", Command(resume={"decision": "approve"}), BOB)
        assert (handle.graph, handle.thread_id) == ("refund", "R")
        [(job_id, task, args, status)] = _jobs(pg_url)
        assert (job_id, task, status) == (handle.job_id, "steward.run", "todo")
        assert args["principal"]["id"] == BOB.id and args["resume"] == {"decision": "approve"}
        assert rt.run_status(handle, BOB)["job"] == "todo"
        assert rt.checkpointer.thread_info("R", ALICE)["status"] == "interrupted"


def test_graphs_are_found_by_name_in_a_langgraph_json(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    graphs = Graphs.locate(ROOT / "langgraph.json")
    assert graphs.names() == ["access", "agent", "close", "refund", "research"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(steward.ConfigError, match="--config or \\$STEWARD_GRAPHS"):
        Graphs.locate()
    monkeypatch.setenv("STEWARD_GRAPHS", str(ROOT / "langgraph.json"))
    assert Graphs.locate().names() == graphs.names()
    bad = tmp_path / "bad.json"
    for text, says in [("{", "not valid JSON"), ("{}", "no \"graphs\" object"),
                       ('{"graphs": {"x": "file.py"}}', "file.py:attribute"),
                       ('{"graphs": {"x": "./none.py:g"}}', "no Python file"),
                       (json.dumps({"graphs": {"x": f"{SUPPORT / '_submitted.py'}:nothing"}}),
                        "has no 'nothing'"),
                       (json.dumps({"graphs": {"x": f"{SUPPORT / '_submitted.py'}:State"}}),
                        "must name a compiled graph")]:
        bad.write_text(text)
        with pytest.raises(steward.ConfigError, match=says):
            found = Graphs.locate(bad)
            import asyncio
            asyncio.run(found.abuild("x", None, None, {}))


@pytest.mark.parametrize("entry", ["builder", "factory"])
async def test_a_builder_or_a_factory_is_bound_to_the_runtime(
        entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEST_WORLD", str(tmp_path / "world"))
    monkeypatch.setenv("STEWARD_TEST_MARKS", str(tmp_path / "marks"))
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"g": f"{SUPPORT / '_submitted.py'}:{entry}"}}))
    async with steward.aopen(f"sqlite:///{tmp_path}/s.db") as rt:
        run = rt.config("T", ALICE)
        graph = await Graphs.locate(config).abuild("g", rt.checkpointer, rt.store, run)
        assert graph.checkpointer is rt.checkpointer
        out = await graph.ainvoke({"order_id": "5"}, run)
        assert out["done"] is True
        assert (await rt.checkpointer.athread_info("T", ALICE))["owner"] == ALICE.id
