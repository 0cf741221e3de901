"""The thread access rule, enforced inside the saver on every path, on both backends."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, BOB, CAROL, DAVE, EVE, ROLES, approval_graph, execute, snapshot
from langgraph.graph import START, StateGraph
from langgraph.types import Command

import steward
from steward import ConfigError, Principal, ThreadAccessDenied


def _paused(rt: steward.Runtime, tid: str = "T1", who: Principal = ALICE) -> Any:
    graph = approval_graph(rt.checkpointer)
    graph.invoke({"items": ["start"]}, rt.config(tid, who))
    return graph


def test_owner_pauses_and_a_granted_role_resumes(rt: steward.Runtime) -> None:
    graph = _paused(rt)
    state = graph.get_state(rt.config("T1", ALICE))
    assert state.next == ("ask",)
    assert state.interrupts[0].value["type"] == "approval_request"
    info = rt.checkpointer.thread_info("T1", ALICE)
    assert info is not None
    assert (info["tenant"], info["owner"], info["status"]) == ("acme", "alice", "interrupted")
    assert info["waiting_on"][0]["type"] == "approval_request"

    result = graph.invoke(Command(resume="yes"), rt.config("T1", BOB))
    assert result == {"items": ["start", "first", "last"], "answer": "yes"}
    info = rt.checkpointer.thread_info("T1", ALICE)
    assert info is not None
    assert (info["owner"], info["status"], info["waiting_on"]) == ("alice", "idle", [])


def _attempts(rt: steward.Runtime, graph: Any, who: Principal | None
              ) -> dict[str, Callable[[], object]]:
    cfg = rt.config("T1", who) if who else {"configurable": {"thread_id": "T1"}}
    saver = rt.checkpointer
    return {
        "get_state": lambda: graph.get_state(cfg),
        "history": lambda: list(graph.get_state_history(cfg)),
        "update_state": lambda: graph.update_state(cfg, {"items": ["forged"]}),
        "invoke": lambda: graph.invoke({"items": ["more"]}, cfg),
        "resume": lambda: graph.invoke(Command(resume="forged"), cfg),
        "put_writes": lambda: saver.put_writes(
            {"configurable": {**cfg["configurable"],
                              "checkpoint_id": graph.get_state(rt.config("T1", ALICE))
                              .config["configurable"]["checkpoint_id"]}},
            [("items", ["x"])], "task-1"),
        "delete_thread": lambda: saver.delete_thread("T1", principal=who),
        "copy_thread": lambda: saver.copy_thread("T1", "T-copy", principal=who),
        "prune": lambda: saver.prune(["T1"], principal=who),
        "delete_for_runs": lambda: saver.delete_for_runs(
            [str(t.metadata.get("run_id")) for t in saver.list(rt.config("T1", ALICE))
             if t.metadata.get("run_id")] or ["none"], principal=who),
        "list": lambda: list(saver.list(cfg)),
    }


@pytest.mark.parametrize("who", [EVE, None], ids=["other-tenant", "no-principal"])
def test_strangers_are_refused_everywhere_and_nothing_changes(
        rt: steward.Runtime, db_url: str, who: Principal | None) -> None:
    graph = _paused(rt)
    before = snapshot(db_url)
    for name, attempt in _attempts(rt, graph, who).items():
        with pytest.raises(ThreadAccessDenied) as info:
            attempt()
            pytest.fail(f"{name} was not refused")
        assert isinstance(info.value, PermissionError), name
        assert info.value.thread_id == "T1", name
        assert "principal" in str(info.value), name
        assert snapshot(db_url) == before, f"{name} changed the database"
    if who is not None:  # another tenant's principal: each refusal is in acme's access chain
        refused = rt.audit.events("access:acme", ALICE, kinds=["access_refused"])
        assert len(refused) >= len(_attempts(rt, graph, who))
        assert {(e.principal_id, e.payload["thread_id"]) for e in refused} == {("eve", "T1")}
    # and the owner still resumes normally afterwards
    assert graph.invoke(Command(resume="ok"), rt.config("T1", BOB))["answer"] == "ok"


def test_roles_inside_the_tenant(rt: steward.Runtime, db_url: str) -> None:
    graph = _paused(rt)
    before = snapshot(db_url)
    with pytest.raises(ThreadAccessDenied, match="thread_roles"):
        graph.get_state(rt.config("T1", DAVE))  # same tenant, no granted role
    assert graph.get_state(rt.config("T1", CAROL)).next == ("ask",)  # auditor may read
    with pytest.raises(ThreadAccessDenied, match="write"):
        graph.invoke(Command(resume="x"), rt.config("T1", CAROL))  # ... but not resume
    with pytest.raises(ThreadAccessDenied, match="admin"):
        rt.checkpointer.delete_thread("T1", principal=BOB)  # a writer may not delete
    assert snapshot(db_url) == before
    rt.checkpointer.delete_thread("T1", principal=ALICE)  # the owner may
    assert graph.get_state(rt.config("T1", ALICE)).values == {}
    assert rt.checkpointer.thread_info("T1", ALICE) is None


def test_unbound_threads_behave_like_stock(rt: steward.Runtime) -> None:
    graph = approval_graph(rt.checkpointer)
    plain = {"configurable": {"thread_id": "U1"}}
    graph.invoke({"items": []}, plain)
    assert graph.get_state(plain).next == ("ask",)
    assert graph.invoke(Command(resume=1), plain)["answer"] == 1
    info = rt.checkpointer.thread_info("U1", None)
    assert info is not None and info["tenant"] is None and info["owner"] is None
    # anyone may read an unbound thread; the first write by a principal binds it
    assert graph.get_state(rt.config("U1", EVE)).values["answer"] == 1
    graph.update_state(rt.config("U1", EVE), {"items": ["claimed"]})
    info = rt.checkpointer.thread_info("U1", EVE)
    assert info is not None and (info["tenant"], info["owner"]) == ("globex", "eve")
    with pytest.raises(ThreadAccessDenied):
        graph.get_state(plain)
    rt.checkpointer.delete_thread("U2")  # deleting an unknown thread needs nothing


def test_listing_never_shows_other_tenants(rt: steward.Runtime) -> None:
    graph = approval_graph(rt.checkpointer)
    for tid, who in [("A1", ALICE), ("D1", DAVE), ("E1", EVE)]:
        graph.invoke({"items": []}, rt.config(tid, who))
    graph.invoke({"items": []}, {"configurable": {"thread_id": "U1"}})

    def threads(who: Principal | None, **filters: Any) -> set[str]:
        config = {"configurable": {"principal": who}} if who else None
        return {t.config["configurable"]["thread_id"]
                for t in rt.checkpointer.list(config, filter=filters or None)}

    assert threads(ALICE) == {"A1"}  # no read grant: only its own threads
    assert threads(CAROL) == {"A1", "D1"}  # auditor: the whole tenant
    assert threads(EVE) == {"E1"}
    assert threads(None) == {"U1"}  # no principal: never a bound thread
    assert threads(CAROL, tenant="acme", principal_id="dave") == {"D1"}
    assert threads(CAROL, tenant="globex") == set()


def test_identity_is_in_checkpoint_metadata(rt: steward.Runtime) -> None:
    graph = _paused(rt)
    graph.invoke(Command(resume="ok"), rt.config("T1", BOB))
    history = list(rt.checkpointer.list(rt.config("T1", ALICE)))
    writers = [(t.metadata["tenant"], t.metadata["principal_id"]) for t in history]
    assert ("acme", "alice") in writers and ("acme", "bob") in writers
    by_bob = list(rt.checkpointer.list(rt.config("T1", ALICE), filter={"principal_id": "bob"}))
    assert by_bob and all(t.metadata["principal_id"] == "bob" for t in by_bob)
    assert len(by_bob) < len(history)


def test_copy_thread_belongs_to_the_copier(rt: steward.Runtime, db_url: str) -> None:
    graph = _paused(rt)
    graph.invoke({"items": []}, rt.config("E1", EVE))
    rt.checkpointer.copy_thread("T1", "T1-copy", principal=CAROL)  # auditors may read T1
    copy = graph.get_state(rt.config("T1-copy", CAROL))
    assert copy.values == graph.get_state(rt.config("T1", ALICE)).values
    info = rt.checkpointer.thread_info("T1-copy", CAROL)
    assert info is not None and (info["tenant"], info["owner"]) == ("acme", "carol")
    with pytest.raises(ThreadAccessDenied):
        graph.get_state(rt.config("T1-copy", EVE))
    before = snapshot(db_url)
    with pytest.raises(ThreadAccessDenied):  # the target belongs to another tenant
        rt.checkpointer.copy_thread("T1", "E1", principal=ALICE)
    assert snapshot(db_url) == before


def test_prune_and_delete_for_runs_respect_the_rule(rt: steward.Runtime) -> None:
    graph = _paused(rt)
    graph.invoke(Command(resume="ok"), rt.config("T1", BOB))
    assert len(list(rt.checkpointer.list(rt.config("T1", ALICE)))) > 1
    rt.checkpointer.prune(["T1"], principal=ALICE)
    left = list(rt.checkpointer.list(rt.config("T1", ALICE)))
    assert len(left) == 1
    assert graph.get_state(rt.config("T1", ALICE)).values["answer"] == "ok"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"configurable": {"checkpoint_ns": ""}}, "thread_id"),
        ({"configurable": {"thread_id": 42}}, "thread_id must be a non-empty string"),
        ({"configurable": {"thread_id": ""}}, "thread_id must be a non-empty string"),
        ({"configurable": {"thread_id": "T1", "principal": {"id": "x"}}}, "tenant"),
        ({"configurable": {"thread_id": "T1", "principal": {"id": "", "tenant": "acme"}}},
         "id"),
        ({"configurable": {"thread_id": "T1",
                           "principal": {"id": "x", "tenant": "acme", "roles": "admin"}}},
         "roles"),
        ({"configurable": {"thread_id": "T1", "principal": "alice"}}, "steward.Principal"),
    ],
)
def test_malformed_configs_are_refused_without_changes(
        rt: steward.Runtime, db_url: str, config: dict[str, Any], message: str) -> None:
    graph = _paused(rt)
    before = snapshot(db_url)
    if "principal" in config["configurable"]:
        # (LangGraph itself turns a non-string thread_id into a string before the saver sees
        # it, so those cases are checked at the saver and in rt.config.)
        with pytest.raises(ConfigError, match=message):
            graph.invoke({"items": ["x"]}, config)
        with pytest.raises(ConfigError, match=message):
            graph.update_state(config, {"items": ["x"]})
    with pytest.raises(ConfigError, match=message):
        rt.checkpointer.get_tuple(config)  # type: ignore[arg-type]
    if "thread_id" in config["configurable"]:  # (without one, list() lists across threads)
        with pytest.raises(ConfigError, match=message):
            list(rt.checkpointer.list(config))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        rt.checkpointer.put_writes({"configurable": {**config["configurable"],
                                                     "checkpoint_id": "c1"}},
                                   [("items", ["x"])], "task-1")
    assert snapshot(db_url) == before


def test_runtime_config_validates_its_arguments(rt: steward.Runtime) -> None:
    with pytest.raises(ConfigError, match="thread_id"):
        rt.config(42, ALICE)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="tenant"):
        rt.config("T1", {"id": "alice"})
    with pytest.raises(ConfigError, match="ttl"):
        rt.config("T1", ALICE, ttl=-1)
    cfg = rt.config("T1", {"id": "alice", "tenant": "acme", "roles": ["support"]}, user="x")
    assert cfg["configurable"]["principal"] == ALICE
    assert cfg["configurable"]["user"] == "x"


def test_principal_dict_form_crosses_the_wire(rt: steward.Runtime) -> None:
    graph = approval_graph(rt.checkpointer)
    wire = {"configurable": {"thread_id": "W1", "principal": ALICE.to_dict()}}
    graph.invoke({"items": []}, wire)
    assert graph.get_state(rt.config("W1", ALICE)).next == ("ask",)
    info = rt.checkpointer.thread_info("W1", ALICE)
    assert info is not None and info["owner"] == "alice"


async def test_async_runtime_enforces_the_same_rule(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("A1", ALICE))
        assert (await graph.aget_state(rt.config("A1", ALICE))).next == ("ask",)
        with pytest.raises(ThreadAccessDenied):
            await graph.aget_state(rt.config("A1", EVE))
        with pytest.raises(ThreadAccessDenied):
            await graph.ainvoke(Command(resume="x"), rt.config("A1", EVE))
        result = await graph.ainvoke(Command(resume="ok"), rt.config("A1", BOB))
        assert result["answer"] == "ok"
        await rt.checkpointer.adelete_thread("A1", principal=ALICE)
        assert (await graph.aget_state(rt.config("A1", ALICE))).values == {}


def test_a_thread_deleted_and_recreated_elsewhere_is_not_written_from_memory(
        db_url: str) -> None:
    """A process that remembers a thread's row (to write it in one round trip) must notice
    that another process deleted it and another tenant took the id: the write is refused."""
    with steward.open(db_url, thread_roles=ROLES) as one, \
            steward.open(db_url, thread_roles=ROLES) as two:
        graph = approval_graph(one.checkpointer)
        # (a config without rt.config's lease callback: a finished leased run forgets the row)
        graph.invoke({"items": []}, {"configurable": {"thread_id": "T1", "principal": ALICE}})
        # `one` now knows T1's row
        head = graph.get_state(one.config("T1", ALICE)).config
        (rev,), = execute(db_url, "SELECT rev FROM steward_threads WHERE thread_id = 'T1'")
        two.checkpointer.delete_thread("T1", principal=ALICE)
        approval_graph(two.checkpointer).invoke({"items": ["eve's"]}, two.config("T1", EVE))
        # even if the new row's revision happens to equal the one `one` remembers
        execute(db_url, "UPDATE steward_threads SET rev = ? WHERE thread_id = 'T1'", (rev,))
        before = snapshot(db_url)
        with pytest.raises(ThreadAccessDenied):
            one.checkpointer.put_writes(
                {"configurable": {**head["configurable"], "principal": ALICE}},
                [("items", ["alice's"])], "task-1")
        with pytest.raises(ThreadAccessDenied):
            graph.update_state(one.config("T1", ALICE), {"items": ["alice's"]})
        assert snapshot(db_url) == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.prune(["T1"], strategy="compact", principal=ALICE), "prune strategy"),
        (lambda s: list(s.list(None, limit=-1)), "limit"),
        (lambda s: list(s.list(None, limit="10")), "limit"),
        (lambda s: s.list_threads(ALICE, limit=-5), "limit"),
        (lambda s: list(s.list(None, filter=["source"])), "dict"),
        (lambda s: list(s.list(None, filter={"a'b": 1})), "quotes"),
        (lambda s: list(s.list(None, filter={"nested": {"x": 1}})), "nested"),
        (lambda s: s.delete_thread(7, principal=ALICE), "thread_id"),
        (lambda s: s.copy_thread("T1", "", principal=ALICE), "target_thread_id"),
    ],
)
def test_bad_arguments_to_the_saver_are_config_errors_and_change_nothing(
        rt: steward.Runtime, db_url: str, call: Callable[[Any], object], message: str) -> None:
    _paused(rt)
    before = snapshot(db_url)
    with pytest.raises(ConfigError, match=message):
        call(rt.checkpointer)
    assert snapshot(db_url) == before


# -- the approver's reach (issue #15) ----------------------------------------------------------


class _PayState(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def _pay(state: _PayState) -> _PayState:
    approval = steward.request_approval("pay", {"amount": "120.00"}, required_roles="manager",
                                        reason="payments need a manager")
    return {"items": [f"paid, approved by {','.join(approval.approvers)}"]}


def _pay_graph(rt: steward.Runtime) -> Any:
    builder = StateGraph(_PayState)
    builder.add_node("pay", _pay)
    builder.add_node("after", lambda s: {"items": ["after"]})
    builder.add_edge(START, "pay")
    builder.add_edge("pay", "after")
    return builder.compile(checkpointer=rt.checkpointer)


FRANK = Principal(id="frank", tenant="acme", roles=frozenset({"manager"}))


@pytest.fixture
def reach_rt(db_url: str) -> Iterator[steward.Runtime]:
    """No role is granted write: managers reach threads only as approvers."""
    with steward.open(db_url, thread_roles={"auditor": "read"}, lease_ttl=5) as runtime:
        yield runtime


def test_an_approver_reads_and_votes_without_a_grant_and_nothing_more(
        reach_rt: steward.Runtime, db_url: str) -> None:
    rt = reach_rt
    graph = _pay_graph(rt)
    graph.invoke({"items": ["start"]}, rt.config("T1", ALICE))
    bob = rt.config("T1", BOB)
    # Bob reads the thread waiting on his role, and finds it in his lists.
    assert graph.get_state(bob).next == ("pay",)
    assert [t["thread_id"] for t in rt.checkpointer.list_threads(BOB)] == ["T1"]
    assert [p["thread_id"] for p in rt.approvals.pending(BOB)] == ["T1"]
    assert rt.approvals.history("T1", BOB)[0]["status"] == "pending"
    # Dave, of the tenant without the role, does not; nor does another tenant.
    for stranger in (DAVE, EVE):
        with pytest.raises(ThreadAccessDenied):
            graph.get_state(rt.config("T1", stranger))
    assert rt.checkpointer.list_threads(DAVE) == []
    # Nothing but a vote: no new input, no update_state, no command, no deletion.
    before = snapshot(db_url)
    attempts: dict[str, Callable[[], object]] = {
        "invoke": lambda: graph.invoke({"items": ["forged"]}, bob),
        "update_state": lambda: graph.update_state(bob, {"items": ["forged"]}),
        "command": lambda: graph.invoke(Command(resume={"decision": "approve"},
                                                update={"items": ["forged"]}), bob),
        "goto": lambda: graph.invoke(Command(goto="after"), bob),
        "delete_thread": lambda: rt.checkpointer.delete_thread("T1", principal=BOB),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ThreadAccessDenied) as caught:
            attempt()
            pytest.fail(f"{name} was not refused")
        assert snapshot(db_url) == before, f"{name} changed the database"
        if name != "delete_thread":
            assert "as an approver it may read the thread and resume it" in str(caught.value)
    # The vote resumes the thread, and the run it resumed goes on to the end, as Bob's.
    out = graph.invoke(Command(resume={"decision": "approve"}), bob)
    assert out["items"] == ["start", "paid, approved by bob", "after"]
    # His reach ended with that run; Frank, a manager too, reached it only while it waited.
    for approver in (BOB, FRANK):
        with pytest.raises(ThreadAccessDenied):
            graph.get_state(rt.config("T1", approver))
    with pytest.raises(ThreadAccessDenied):
        graph.invoke({"items": ["more"]}, bob)


async def test_the_approvers_reach_under_an_async_runtime(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles={}) as rt:
        graph = _pay_graph(rt)
        await graph.ainvoke({"items": ["start"]}, rt.config("A1", ALICE))
        bob = rt.config("A1", BOB)
        assert (await graph.aget_state(bob)).next == ("pay",)
        with pytest.raises(ThreadAccessDenied):
            await graph.ainvoke({"items": ["forged"]}, bob)
        out = await graph.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), bob)
        assert out["items"][-1] == "after"
        with pytest.raises(ThreadAccessDenied):  # nothing waits on him any more
            await rt.approvals.acheck_resume("A1", BOB, {"decision": "approve"})
