"""The effect ledger in real graphs on both backends: a side effect runs once per call site,
however often its node runs (issue #5)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, BOB, execute, one_node, snapshot
from langgraph.graph import START, StateGraph
from langgraph.types import Command, RetryPolicy, interrupt

import steward
from steward import ConfigError, EffectConflict

KEY = "ab" * 32
ROLES = {"manager": "write"}
WORLD: list[tuple[str, Any]] = []  # what the outside world saw: (idempotency key, amount)


class State(TypedDict, total=False):
    amount: str
    receipts: Annotated[list[Any], operator.add]


@steward.effect
def issue_refund(order_id: str, amount: str, *, idempotency_key: str) -> dict[str, Any]:
    WORLD.append((idempotency_key, amount))
    return {"txn": f"TXN-{len(WORLD)}", "order_id": order_id, "amount": amount}


def _refund_then_confirm(state: State) -> dict[str, Any]:
    receipt = issue_refund("98765", state["amount"])
    answer = interrupt({"type": "confirm", "receipt": receipt})  # the node re-runs on resume
    return {"receipts": [receipt, answer]}


@pytest.fixture(autouse=True)
def _clear_world() -> None:
    WORLD.clear()


def test_a_resumed_node_replays_the_recorded_result(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES) as rt:
        graph = one_node(State, _refund_then_confirm).compile(checkpointer=rt.checkpointer)
        out = graph.invoke({"amount": "120.00"}, rt.config("T", ALICE))
        first = out["__interrupt__"][0].value["receipt"]
        assert first["txn"] == "TXN-1" and len(WORLD) == 1
        out = graph.invoke(Command(resume="yes"), rt.config("T", BOB))
        assert out["receipts"] == [first, "yes"]
        assert len(WORLD) == 1  # the node ran twice, the refund once
        [(key, _)] = WORLD
        assert key.startswith("stw-")
        [row] = execute(db_url, "SELECT status, attempts, idempotency_key FROM steward_effects")
        assert row == ("done", 1, key)


def test_each_call_site_is_its_own(db_url: str) -> None:
    def twice(state: State) -> dict[str, Any]:
        a = issue_refund("1", "10.00")
        b = issue_refund("1", "10.00")  # same arguments, second call: a second refund
        answer = interrupt("ok?")
        return {"receipts": [a["txn"], b["txn"], answer]}

    with steward.open(db_url) as rt:
        graph = one_node(State, twice).compile(checkpointer=rt.checkpointer)
        graph.invoke({}, rt.config("T", ALICE))
        out = graph.invoke(Command(resume="y"), rt.config("T", ALICE))
        assert out["receipts"] == ["TXN-1", "TXN-2", "y"]
        assert len(WORLD) == 2 and WORLD[0][0] != WORLD[1][0]


def test_other_arguments_on_a_rerun_are_a_conflict_and_change_nothing(db_url: str) -> None:
    amounts = iter(["10.00", "99.00"])

    def node(state: State) -> dict[str, Any]:
        issue_refund("1", next(amounts))  # not from the state: differs when the node re-runs
        return {"receipts": [interrupt("ok?")]}

    with steward.open(db_url) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        graph.invoke({}, rt.config("T", ALICE))
        before = snapshot(db_url)["steward_effects"]
        with pytest.raises(EffectConflict, match="other arguments"):
            graph.invoke(Command(resume="y"), rt.config("T", ALICE))
        assert snapshot(db_url)["steward_effects"] == before
        assert WORLD == [(WORLD[0][0], "10.00")]


def test_a_failed_call_runs_again_with_the_same_key(db_url: str) -> None:
    calls: list[str] = []

    @steward.effect
    def flaky(*, idempotency_key: str) -> str:
        calls.append(idempotency_key)
        if len(calls) == 1:
            raise TimeoutError("the payment service did not answer")
        return "paid"

    def node(state: State) -> dict[str, Any]:
        return {"receipts": [flaky()]}

    with steward.open(db_url) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        with pytest.raises(TimeoutError):
            graph.invoke({}, rt.config("T", ALICE))
        [row] = execute(db_url, "SELECT status, error FROM steward_effects")
        assert row[0] == "error" and "did not answer" in row[1]
        assert graph.invoke(None, rt.config("T", ALICE))["receipts"] == ["paid"]
        assert len(calls) == 2 and calls[0] == calls[1]
        assert execute(db_url, "SELECT status, attempts FROM steward_effects") == [("done", 2)]


def test_a_retry_policy_calls_again_at_the_same_site_with_the_same_key(db_url: str) -> None:
    """A node's RetryPolicy runs it again from its first line within the run: its effect is
    the same call site, so a call that acted and then failed (no answer in time) is called
    again under its key, and the other system drops the repeat (found by ``steward eval``:
    each attempt used to count its calls on from the last, a new site and a new key)."""
    paid: dict[str, str] = {}  # the other system: one refund per key

    @steward.effect
    def pay(amount: str, *, idempotency_key: str) -> str:
        first = idempotency_key not in paid
        paid.setdefault(idempotency_key, amount)
        if first:
            raise TimeoutError("the provider acted, and its answer was lost")
        return f"paid {amount}"

    builder = StateGraph(State)
    builder.add_node("n", lambda state: {"receipts": [pay("10.00"), issue_refund("1", "2.00")]},
                     retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.0,
                                              jitter=False, retry_on=TimeoutError))
    builder.add_edge(START, "n")
    with steward.open(db_url) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
    assert out["receipts"][0] == "paid 10.00" and list(paid.values()) == ["10.00"]
    assert len(WORLD) == 1
    assert sorted(execute(db_url, "SELECT seq, status, attempts FROM steward_effects")) == [
        (0, "done", 2), (1, "done", 1)]


def test_what_allowed_an_effect_is_in_the_trail_before_it_acts(db_url: str) -> None:
    """The guard's decision and the approval are written with the effect's intent: a process
    killed during the call leaves a trail that shows what authorized it (found by ``steward
    eval``: a run killed mid-call lost its approval's outcome, and the trail showed an effect
    nobody approved)."""
    policy = steward.Policy.from_cedar(
        'permit (principal, action, resource) when { principal.tenant == context.thread.tenant'
        ' };\n@approval("manager") forbid (principal, action == Action::"pay", resource);')
    stored: list[list[str]] = []  # what the trail held when the effect acted

    @steward.effect
    def pay(amount: str, *, idempotency_key: str) -> str:
        stored.append([e.kind for e in rt.audit.events("T", ALICE)])  # what a kill would leave
        return f"paid {amount}"

    def node(state: State) -> dict[str, Any]:
        steward.guard("pay", {"amount": state["amount"]})
        return {"receipts": [pay(state["amount"])]}

    with steward.open(db_url, policy=policy, thread_roles=ROLES) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        graph.invoke({"amount": "5.00"}, rt.config("T", ALICE))
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
    assert out["receipts"] == ["paid 5.00"]
    [kinds] = stored
    assert kinds[-3:] == ["guard", "approval_vote", "approval_outcome"], kinds


@pytest.mark.parametrize("took_effect", [True, False])
def test_reconcile_decides_after_a_call_that_died_midway(db_url: str, took_effect: bool) -> None:
    seen: list[tuple[str, str]] = []

    def look(key: str, order_id: str, *, idempotency_key: str | None = None) -> Any:
        seen.append((key, order_id))
        return {"txn": "found upstream"} if took_effect else steward.RETRY

    @steward.effect(reconcile=look)
    def pay(order_id: str, *, idempotency_key: str) -> dict[str, str]:
        WORLD.append((idempotency_key, order_id))
        return {"txn": f"paid {len(WORLD)}"}

    def node(state: State) -> dict[str, Any]:
        receipt = pay("7")
        return {"receipts": [receipt, interrupt("ok?")]}

    with steward.open(db_url) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        graph.invoke({}, rt.config("T", ALICE))
        # What a process killed during the call leaves behind: an intent with no outcome.
        execute(db_url, "UPDATE steward_effects SET status = 'intent', type = NULL, "
                        "result = NULL")
        out = graph.invoke(Command(resume="y"), rt.config("T", ALICE))
        [key] = {k for k, _ in WORLD}
        assert seen == [(key, "7")]
        if took_effect:
            assert out["receipts"] == [{"txn": "found upstream"}, "y"] and len(WORLD) == 1
        else:
            assert out["receipts"] == [{"txn": "paid 2"}, "y"] and len(WORLD) == 2


async def test_async_effects_in_async_nodes(db_url: str) -> None:
    @steward.effect
    async def notify(user: str, *, idempotency_key: str) -> str:
        WORLD.append((idempotency_key, user))
        return f"sent to {user}"

    async def node(state: State) -> dict[str, Any]:
        sent = await notify("jane")
        return {"receipts": [sent, interrupt("ok?")]}

    async with steward.aopen(db_url) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        await graph.ainvoke({}, rt.config("T", ALICE))
        out = await graph.ainvoke(Command(resume="y"), rt.config("T", ALICE))
        assert out["receipts"] == ["sent to jane", "y"] and len(WORLD) == 1


def test_results_are_sealed_when_the_runtime_encrypts(db_url: str) -> None:
    with steward.open(db_url, encryption_key=KEY) as rt:
        graph = one_node(State, _refund_then_confirm).compile(checkpointer=rt.checkpointer)
        graph.invoke({"amount": "55.00"}, rt.config("T", ALICE))
        [(blob,)] = execute(db_url, "SELECT result FROM steward_effects")
        assert b"98765" not in bytes(blob)
        out = graph.invoke(Command(resume="y"), rt.config("T", ALICE))
        assert out["receipts"][0]["order_id"] == "98765" and len(WORLD) == 1


def test_outside_a_steward_run_an_effect_says_so(db_url: str) -> None:
    @steward.effect(allow_outside=True)
    def log_line(text: str) -> str:
        return text.upper()

    # An open runtime, even one that has run the effect, is not a run: outside a node the
    # effect refuses (or, allowed outside, is a plain call) and the ledger records nothing.
    with steward.open(db_url) as rt:
        graph = one_node(State, _refund_then_confirm).compile(checkpointer=rt.checkpointer)
        graph.invoke({"amount": "10.00"}, rt.config("T", ALICE))
        before = snapshot(db_url)
        with pytest.raises(ConfigError, match="inside a node"):
            issue_refund("1", "2.00")
        assert log_line("plain call") == "PLAIN CALL"
        assert snapshot(db_url) == before
    assert [amount for _, amount in WORLD] == ["10.00"]


def test_an_unstorable_result_is_not_repeated(db_url: str) -> None:
    @steward.effect
    def opens_a_socket() -> Any:
        WORLD.append(("-", "socket"))
        return object()

    def node(state: State) -> dict[str, Any]:
        opens_a_socket()
        return {}

    with steward.open(db_url) as rt:
        graph = one_node(State, node).compile(checkpointer=rt.checkpointer)
        with pytest.raises(ConfigError, match="cannot store"):
            graph.invoke({}, rt.config("T", ALICE))
        with pytest.raises(ConfigError, match="neither replayed nor repeated"):
            graph.invoke(None, rt.config("T", ALICE))
        assert len(WORLD) == 1


def test_deleting_a_thread_deletes_its_ledger(db_url: str) -> None:
    with steward.open(db_url) as rt:
        graph = one_node(State, _refund_then_confirm).compile(checkpointer=rt.checkpointer)
        graph.invoke({"amount": "1.00"}, rt.config("T", ALICE))
        rt.checkpointer.delete_thread("T", principal=ALICE)
        assert execute(db_url, "SELECT count(*) FROM steward_effects") == [(0,)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_langgraph_retry_replays_the_effect_instead_of_repeating_it(db_url: str,
                                                                      mode: str) -> None:
    """A node with a RetryPolicy that made its effect and then failed runs again from its first
    line: the effect is the same call site, so the ledger replays it (issue: LangGraph hands a
    retry the same config, and the call-site counters used to go on counting)."""
    from langgraph.types import RetryPolicy

    attempts: list[int] = []

    def flaky(state: State) -> dict[str, Any]:
        steward.guard("issue_refund", {"order_id": "98765", "amount": state["amount"]})
        receipt = issue_refund("98765", state["amount"])
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("the ticket system hung up after the refund")
        return {"receipts": [receipt]}

    builder = one_node(State, flaky)
    builder.nodes["n"].retry_policy = [RetryPolicy(max_attempts=2, initial_interval=0.01,
                                                   retry_on=ConnectionError)]
    if mode == "async":
        async def run() -> dict[str, Any]:
            async with steward.aopen(db_url) as rt:
                graph = builder.compile(checkpointer=rt.checkpointer)
                out: dict[str, Any] = await graph.ainvoke({"amount": "20.00"},
                                                          rt.config("T", ALICE))
                return out
        out = asyncio.run(run())
    with steward.open(db_url) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        if mode == "sync":
            out = graph.invoke({"amount": "20.00"}, rt.config("T", ALICE))
        assert len(attempts) == 2
        assert out["receipts"] == [{"txn": "TXN-1", "order_id": "98765", "amount": "20.00"}]
        assert len(WORLD) == 1  # the node ran twice, the refund once
        rows = execute(db_url, "SELECT seq, status, attempts FROM steward_effects")
        assert rows == [(0, "done", 1)]
        kinds = [e.kind for e in rt.audit.events("T", ALICE)]
        assert kinds.count("effect_call") == 1 and kinds.count("effect_replay") == 1
        assert len(execute(db_url, "SELECT seq FROM steward_actions")) == 1  # one guard site
