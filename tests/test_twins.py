"""Every public method that touches the database has its async twin, with the same
parameters, and the twins behave alike (issue #14: twins must not drift)."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest
from _support import ALICE, BOB, CAROL, ROLES, approval_graph, one_node

import steward
from steward.audit.log import AuditLog
from steward.checkpointers.saver import StewardSaver
from steward.guardrails.inbox import Approvals
from steward.memory.store import MemoryStore
from steward.runtime import Runtime

# Public methods that need no twin: pure (no I/O). Operations (``*_op``: sans-IO generators
# run inside a transaction someone else opened, by either twin) need none either.
SYNC_ONLY = {
    Runtime: {"config"},
    AuditLog: {"record", "pending", "held", "begin_run", "joins", "joined", "ended",
               "personal_data"},
    Approvals: set(),
    StewardSaver: {"get_next_version", "with_allowlist", "forget", "close"},
    MemoryStore: {"bind"},
}
# Names that start with "a" without being an async twin.
NOT_TWINS = {"acquire_lease", "add_subjects"}


def _public(cls: type) -> dict[str, object]:
    return {name: member for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member)}


@pytest.mark.parametrize("cls", list(SYNC_ONLY), ids=lambda c: c.__name__)
def test_every_public_method_has_its_async_twin(cls: type) -> None:
    members = {name: member for name, member in _public(cls).items()
               if not name.endswith("_op")}
    for name, member in members.items():
        if name in SYNC_ONLY[cls] or (name.startswith("a") and name not in NOT_TWINS
                                      and name[1:] in members):
            continue
        if name.startswith("a") and name not in NOT_TWINS:
            raise AssertionError(f"{cls.__name__}.{name} has no sync twin {name[1:]}")
        twin = members.get(f"a{name}")
        assert twin is not None, f"{cls.__name__}.{name} has no async twin a{name}"
        returns = str(inspect.signature(twin).return_annotation)  # type: ignore[arg-type]
        assert (inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin)
                or "AsyncContextManager" in returns), f"{cls.__name__}.a{name} is not async"
        ours = list(inspect.signature(member).parameters)  # type: ignore[arg-type]
        theirs = list(inspect.signature(twin).parameters)  # type: ignore[arg-type]
        assert ours == theirs, f"{cls.__name__}.{name}{ours} != a{name}{theirs}"
    # The exemptions are real methods (a renamed one must not linger here).
    assert SYNC_ONLY[cls] <= set(members)


class Ask(TypedDict, total=False):
    amount: str
    approved: Any


def _ask(state: Ask) -> Ask:
    approval = steward.request_approval("refund", {"amount": state["amount"]},
                                        required_roles=["manager"], reason="a test")
    return {"approved": approval.decision}


async def test_the_async_twins_do_what_the_sync_ones_do(db_url: str, tmp_path: Path) -> None:
    with steward.open(db_url, thread_roles=ROLES) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("S1", ALICE))
        one_node(Ask, _ask).compile(checkpointer=rt.checkpointer).invoke(
            {"amount": "5"}, rt.config("S2", ALICE))
        sync_export = rt.audit.export(tmp_path / "sync.jsonl", ALICE)
        sync_all = rt.audit.verify_all(CAROL)
        [request] = rt.approvals.pending(BOB)
        found = rt.approvals.find(request["id"][:8], BOB)
        assert [r["id"] for r in found] == [request["id"]]
    async with steward.aopen(db_url, thread_roles=ROLES) as rt:
        assert await rt.audit.aexport(tmp_path / "async.jsonl", ALICE) == sync_export
        assert await rt.audit.averify_all(CAROL) == sync_all
        lines = [json.loads(line) for line in (tmp_path / "async.jsonl").read_text().splitlines()]
        assert lines == [json.loads(line) for line in
                         (tmp_path / "sync.jsonl").read_text().splitlines()]
        assert await rt.approvals.afind(request["id"][:8], BOB) == found
        assert len(sync_all) == 2 and sync_export == sum(sync_all.values())
        with pytest.raises(steward.ConfigError, match="no audit events"):
            await rt.audit.aexport(tmp_path / "none.jsonl", ALICE, thread_id="nope")
        assert not (tmp_path / "none.jsonl").exists()


async def test_asubscribe_wakes_on_a_write_of_this_process(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("W1", ALICE))
        seen = len(await rt.audit.aevents("W1", ALICE))
        stream = rt.audit.asubscribe("W1", ALICE, after=seen, poll=30)

        async def first() -> float:
            await stream.__anext__()
            return time.monotonic()

        waiting = asyncio.create_task(first())
        await asyncio.sleep(0.2)  # the subscriber is waiting now, for up to 30 s
        started = time.monotonic()
        await graph.ainvoke(steward_resume(), rt.config("W1", BOB))
        arrived = await asyncio.wait_for(waiting, 10)
        assert arrived - started < 5  # woken by the write, not by the 30 s poll
        await stream.aclose()


def steward_resume() -> object:
    from langgraph.types import Command

    return Command(resume={"decision": "approve"})
