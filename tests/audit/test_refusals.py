"""Another tenant's principal refused by the thread access rule is audited in the access chain
of the thread's tenant (``access:<tenant>``), whichever way it came in; the thread's own
chain and rows stay as they were."""

from __future__ import annotations

from typing import Any

import pytest
from _support import ALICE, BOB, DAVE, EVE, ROLES, approval_graph, snapshot
from langgraph.types import Command

import steward


def _refusals(rt: steward.Runtime) -> list[tuple[str | None, str | None, Any, Any]]:
    return [(e.principal_id, e.tenant, e.payload["thread_id"], e.payload["need"])
            for e in rt.audit.events("access:acme", ALICE, kinds=["access_refused"])]


def test_every_way_in_of_another_tenant_is_refused_and_audited(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        before = snapshot(db_url)["steward_audit"]
        attempts = [
            lambda: graph.invoke(Command(resume={"decision": "approve"}), rt.config("T1", EVE)),
            lambda: graph.get_state(rt.config("T1", EVE)),
            lambda: rt.audit.events("T1", EVE),
            lambda: rt.checkpointer.thread_info("T1", EVE),
            lambda: rt.checkpointer.check_access("T1", EVE, "read"),
            lambda: rt.approvals.history("T1", EVE),
        ]
        for attempt in attempts:
            with pytest.raises(steward.ThreadAccessDenied, match="another tenant"):
                attempt()
        with pytest.raises(steward.ThreadAccessDenied):  # same tenant, no role: not audited
            rt.audit.events("T1", DAVE)
        refused = _refusals(rt)
        assert refused == [("eve", "globex", "T1", "write")] + [("eve", "globex", "T1", "read")] * 5
        assert rt.audit.verify("access:acme") == 6
        after = snapshot(db_url)["steward_audit"]
        assert [r for r in after if r[0] == "T1"] == [r for r in before if r[0] == "T1"]
        with pytest.raises(steward.ThreadAccessDenied, match="access chain of tenant 'acme'"):
            rt.audit.events("access:acme", EVE)  # only the tenant's own read it
        assert rt.audit.events("access:globex", EVE) == []  # nothing against globex


async def test_an_async_refusal_is_audited_too(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("T2", ALICE))
        with pytest.raises(steward.ThreadAccessDenied):
            await graph.ainvoke(Command(resume={"decision": "approve"}), rt.config("T2", EVE))
        await graph.ainvoke(Command(resume={"decision": "approve"}), rt.config("T2", BOB))
        [event] = await rt.audit.aevents("access:acme", ALICE)
    assert (event.kind, event.principal_id, event.payload) == (
        "access_refused", "eve", {"thread_id": "T2", "need": "write", "tenant": "globex"})
