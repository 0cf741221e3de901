"""The agent loop (plan -> act -> validate) over real databases, offline (issue #5)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Annotated, Any

import pytest
from _support import ALICE, BOB, CAROL, execute
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import InjectedToolArg, tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from pydantic import BaseModel

import steward
from steward.graphs import build_agent_graph
from steward.nodes import Planner, Retry, ToolExecutor, Transient
from steward.state import WorkingContext

ROLES = {"manager": "write", "auditor": "read"}
POLICY = """
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("big-refund") @approval("manager") @reason("refunds above 100.00 need a manager")
forbid (principal, action == Action::"issue_refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };

@id("no-deletes") @reason("nobody deletes orders")
forbid (principal, action == Action::"delete_order", resource);
"""
REFUNDS: list[dict[str, Any]] = []
ORDERS = {"98765": {"order_id": "98765", "total": "150.00", "email": "jane@example.com"}}


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    return ORDERS[order_id]


@tool
def issue_refund(order_id: str, amount: str,
                 idempotency_key: Annotated[str, InjectedToolArg],
                 principal: Annotated[dict[str, Any], InjectedToolArg]) -> dict[str, Any]:
    """Refund an amount on an order."""
    REFUNDS.append({"order_id": order_id, "amount": amount, "key": idempotency_key,
                    "by": principal["id"]})
    return {"refund_id": f"R-{len(REFUNDS)}", "order_id": order_id, "amount": amount}


@tool
def delete_order(order_id: str) -> str:
    """Delete an order."""
    return "deleted"


class RefundResult(BaseModel):
    refund_id: str
    order_id: str
    amount: str


def refund_within_total(state: WorkingContext) -> str | None:
    results = {s["tool"]: s.get("result") for s in state.get("plan", [])}
    refund, order = results.get("issue_refund"), results.get("lookup_order")
    if refund and order and Decimal(refund["amount"]) > Decimal(order["total"]):
        return f"refund {refund['amount']} exceeds the order total {order['total']}"
    return None


STATIC = [{"tool": "lookup_order", "args": {"order_id": "$order_id"}},
          {"tool": "issue_refund", "args": {"order_id": "$order_id", "amount": "$amount"}}]


@pytest.fixture(autouse=True)
def _clear() -> None:
    REFUNDS.clear()


def _runtime(db_url: str) -> Any:
    return steward.open(db_url, thread_roles=ROLES, policy=steward.Policy.from_cedar(POLICY))


def _agent(rt: Any, **options: Any) -> Any:
    options.setdefault("static_plan", STATIC)
    options.setdefault("read_only", ["lookup_order"])
    builder = build_agent_graph([lookup_order, issue_refund, delete_order], **options)
    return builder.compile(checkpointer=rt.checkpointer)


def _start(amount: str) -> dict[str, Any]:
    return {"goal": "refund order 98765", "inputs": {"order_id": "98765", "amount": amount}}


def test_a_refund_runs_plan_act_validate_with_an_approval(db_url: str) -> None:
    with _runtime(db_url) as rt:
        graph = _agent(rt, results={"issue_refund": RefundResult},
                       invariants=[refund_within_total])
        out = graph.invoke(_start("120.00"), rt.config("T", ALICE))
        request = out["__interrupt__"][0].value
        assert request["action"] == "issue_refund" and request["required_roles"] == ["manager"]
        assert REFUNDS == []  # nothing acted before the approval
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert out["outcome"]["status"] == "done"
        assert [(s["tool"], s["status"], s.get("validated")) for s in out["plan"]] == [
            ("lookup_order", "done", True), ("issue_refund", "done", True)]
        assert out["plan"][1]["approved_by"] == ["bob"]
        [approval] = out["approvals"]
        assert (approval["action"], approval["step"], approval["approvers"]) == (
            "issue_refund", "s2", ["bob"])
        [refund] = REFUNDS
        assert refund["key"].startswith("stw-")
        assert refund["by"] == "bob"  # the tool acts as the principal running it
        assert out["outcome"]["results"]["issue_refund"]["refund_id"] == "R-1"
        rows = execute(db_url, "SELECT name, status FROM steward_effects ORDER BY name")
        assert rows == [("tool:issue_refund", "done")]  # read-only lookups skip the ledger


def test_an_invariant_violation_escalates_and_a_rejection_fails(db_url: str) -> None:
    with _runtime(db_url) as rt:
        graph = _agent(rt, invariants=[refund_within_total], escalate_to=["manager"])
        graph.invoke(_start("180.00"), rt.config("T", ALICE))  # > 100: approval first
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        request = out["__interrupt__"][0].value  # 180 > 150: the invariant asks again
        assert request["action"] == "override_invariants"
        assert "exceeds the order total" in request["args"]["violations"][0]
        out = graph.invoke(Command(resume={"decision": "reject", "comment": "too much"}),
                           rt.config("T", CAROL.__class__("frank", "acme",
                                                          frozenset({"manager"}))))
        assert out["outcome"]["status"] == "failed"
        assert "override reject" in out["outcome"]["reason"]
        assert [e["type"] for e in out["errors"]] == ["invariant"]


def test_transient_errors_are_retried_with_backoff_under_one_key(db_url: str) -> None:
    keys: list[str] = []

    @tool
    def charge(amount: str, idempotency_key: Annotated[str, InjectedToolArg]) -> str:
        """Charge a card."""
        keys.append(idempotency_key)
        if len(keys) < 3:
            raise Transient("the card network is busy")
        return "charged"

    slept: list[float] = []
    with steward.open(db_url) as rt:
        builder = build_agent_graph(
            [charge], static_plan=[{"tool": "charge", "args": {"amount": "5.00"}}],
            retry=Retry(attempts=3, initial=0.1, factor=2.0, jitter=0.0))
        graph = builder.compile(checkpointer=rt.checkpointer)
        # The executor's sleep is injectable; swap it to observe the backoff.
        graph.nodes["act"].bound.func.sleep = slept.append  # type: ignore[attr-defined]
        out = graph.invoke({"inputs": {}}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "done" and out["plan"][0]["result"] == "charged"
    assert len(keys) == 3 and len(set(keys)) == 1
    assert slept == [0.1, 0.2]


def test_a_timeout_is_retried_then_fails_with_the_reason(db_url: str) -> None:
    calls: list[str] = []

    @tool
    def slow(x: int, idempotency_key: Annotated[str, InjectedToolArg]) -> int:
        """Slow."""
        calls.append(idempotency_key)
        time.sleep(0.5)
        return x

    with steward.open(db_url) as rt:
        graph = build_agent_graph(
            [slow], static_plan=[{"tool": "slow", "args": {"x": 1}}], timeout=0.1,
            retry=Retry(attempts=1), max_attempts=2).compile(checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed"
    assert "did not answer within 0.1s" in out["outcome"]["reason"]
    assert [e["type"] for e in out["errors"]] == ["timeout", "timeout"]
    assert out["plan"][0]["status"] == "failed" and out["plan"][0]["attempts"] == 2
    # Two rounds through act, one key: a call that timed out may have gone through.
    assert len(calls) == 2 and len(set(calls)) == 1


def test_a_timed_out_attempt_is_a_tool_error_in_the_trail(db_url: str) -> None:
    """The executor stops waiting: the trail says so then, as the attempt's error, and the
    retry that follows is one the scorecard counts; the late answer is not the call's outcome
    (found by ``steward eval``: timeouts left no trace, and their retries were not counted)."""
    answered = threading.Event()

    @tool
    def slow_once(x: int) -> int:
        """Slow the first time."""
        if not answered.is_set():
            answered.set()
            time.sleep(0.4)
        return x

    auditor = steward.Principal(id="carol", tenant="acme", roles=frozenset({"auditor"}))
    with steward.open(db_url, thread_roles={"auditor": "read"}) as rt:
        graph = build_agent_graph(
            [slow_once], static_plan=[{"tool": "slow_once", "args": {"x": 1}}], timeout=0.1,
            retry=Retry(attempts=2, initial=0.0, jitter=0.0)).compile(
                checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
        time.sleep(0.5)  # the late answer arrives
        assert out["outcome"]["status"] == "done"
        graph.invoke(None, rt.config("T", ALICE))  # a later write flushes what came late
        kinds = [(e.kind, e.payload.get("error")) for e in rt.audit.events("T", ALICE)
                 if e.kind.startswith("tool_")]
        assert kinds == [("tool_call", None), ("tool_error", "TimeoutError"),
                         ("tool_call", None), ("tool_result", None)]
        assert rt.report(auditor).recovery.by_cause == {"retry": 1}


@pytest.mark.parametrize(("plan", "kind", "where"), [
    ([{"tool": "issue_refund", "args": {"order_id": "98765"}}], "invalid_args", "errors"),
    ([{"tool": "issue_refund", "args": {"order_id": "1", "amount": "5", "extra": 1}}],
     "invalid_args", "errors"),
    ([{"tool": "delete_order", "args": {"order_id": "98765"}}], "denied", "errors"),
    ([{"tool": "launch_rockets", "args": {}}], "invalid_plan", "errors"),
])
def test_bad_steps_end_as_typed_errors_and_act_on_nothing(db_url: str, plan: Any, kind: str,
                                                         where: str) -> None:
    with _runtime(db_url) as rt:
        graph = _agent(rt, static_plan=plan)
        out = graph.invoke(_start("5.00"), rt.config("T", ALICE))
        assert out["outcome"]["status"] == "failed"
        assert [e["type"] for e in out[where]] == [kind]
        assert REFUNDS == []
        state = graph.get_state(rt.config("T", ALICE))
        assert state.next == ()  # ended, nothing half-done waiting


def test_a_non_transient_tool_error_fails_at_once(db_url: str) -> None:
    @tool
    def broken(x: int) -> int:
        """Broken."""
        raise KeyError("no such account")

    with steward.open(db_url) as rt:
        graph = build_agent_graph([broken], static_plan=[{"tool": "broken", "args": {"x": 1}}],
                                  ).compile(checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed" and "no such account" in out["outcome"]["reason"]
    assert out["plan"][0]["attempts"] == 1


def test_an_invalid_result_is_retried_then_fails(db_url: str) -> None:
    @tool
    def refund_badly(order_id: str) -> dict[str, Any]:
        """Returns the wrong shape."""
        return {"id": order_id}

    with steward.open(db_url) as rt:
        graph = build_agent_graph(
            [refund_badly], static_plan=[{"tool": "refund_badly", "args": {"order_id": "1"}}],
            results={"refund_badly": RefundResult}).compile(checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed"
    assert [e["type"] for e in out["errors"]] == ["invalid_result", "invalid_result"]


class FakePlanModel:
    """A chat model stand-in with structured output: records what it was shown."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.seen: list[Any] = []
        self.schemas: list[Any] = []

    def with_structured_output(self, schema: Any) -> Any:
        self.schemas.append(schema)

        def reply(messages: Any) -> Any:
            self.seen.append(messages)
            return self.answer

        return RunnableLambda(reply)


def test_a_model_plans_with_only_the_tools_the_principal_may_use(db_url: str) -> None:
    model = FakePlanModel({"steps": [
        {"tool": "lookup_order", "args": {"order_id": "98765"}, "reason": "check it"},
        {"tool": "issue_refund", "args": {"order_id": "98765", "amount": "20.00"}}]})
    with _runtime(db_url) as rt:
        graph = _agent(rt, model=model, static_plan=None, token_budget=300)
        history = [HumanMessage(f"older message {i} " + "x" * 200) for i in range(50)]
        out = graph.invoke({"messages": [*history, HumanMessage("refund 98765 please")]},
                           rt.config("T", ALICE))
    assert out["outcome"]["status"] == "done" and REFUNDS[0]["amount"] == "20.00"
    [schema] = model.schemas
    offered = schema.model_json_schema()["$defs"]["PlanStep"]["properties"]["tool"]["enum"]
    assert offered == ["issue_refund", "lookup_order"]  # delete_order is denied to everyone
    [shown] = model.seen
    from langchain_core.messages.utils import count_tokens_approximately

    assert count_tokens_approximately(shown) <= 300  # trimmed to the budget
    assert shown[-1].content == "refund 98765 please"


@pytest.mark.parametrize("answer", [
    {"steps": []}, {"steps": [{"tool": "delete_order", "args": {}}]}, {"nonsense": True},
    {"steps": [{"tool": "lookup_order", "args": "not a dict"}]},
])
def test_an_invalid_model_plan_fails_without_acting(db_url: str, answer: Any) -> None:
    with _runtime(db_url) as rt:
        graph = _agent(rt, model=FakePlanModel(answer), static_plan=None)
        out = graph.invoke({"goal": "refund 98765"}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed"
    assert [e["type"] for e in out["errors"]] == ["invalid_plan"] and REFUNDS == []


def test_tool_calls_of_a_model_message_are_answered(db_url: str) -> None:
    executor = ToolExecutor([lookup_order, issue_refund], read_only=["lookup_order"])
    builder = StateGraph(WorkingContext)
    builder.add_node("act", executor)
    builder.add_edge(START, "act")
    builder.add_edge("act", END)
    ask = AIMessage("", tool_calls=[
        {"id": "c1", "name": "lookup_order", "args": {"order_id": "98765"}},
        {"id": "c2", "name": "issue_refund", "args": {"order_id": "98765", "amount": "9.00"}},
        {"id": "c3", "name": "nope", "args": {}}])
    with _runtime(db_url) as rt:
        out = builder.compile(checkpointer=rt.checkpointer).invoke(
            {"messages": [HumanMessage("go"), ask]}, rt.config("T", ALICE))
    answers = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.status) for m in answers] == [
        ("c1", "success"), ("c2", "success"), ("c3", "error")]
    assert "unknown_tool" in answers[2].content and len(REFUNDS) == 1


def test_planner_needs_a_model_or_a_plan() -> None:
    with pytest.raises(steward.ConfigError, match="static plan"):
        Planner([lookup_order])


def test_a_result_must_fit_the_tools_declared_return_model(db_url: str) -> None:
    def make_refund(order_id: str) -> RefundResult:
        """Declares a typed result, returns something else."""
        return {"refund_id": 7}  # type: ignore[return-value]

    with steward.open(db_url) as rt:
        graph = build_agent_graph(
            [tool(make_refund)], static_plan=[{"tool": "make_refund",
                                               "args": {"order_id": "1"}}],
            read_only=["make_refund"]).compile(checkpointer=rt.checkpointer)
        out = graph.invoke({}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed"
    assert {e["type"] for e in out["errors"]} == {"invalid_result"}
    assert "RefundResult" in out["outcome"]["reason"]


async def test_the_agent_runs_under_aopen_and_ainvoke(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles=ROLES,
                             policy=steward.Policy.from_cedar(POLICY)) as rt:
        graph = _agent(rt)
        out = await graph.ainvoke(_start("120.00"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["action"] == "issue_refund"
        out = await graph.ainvoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert out["outcome"]["status"] == "done" and len(REFUNDS) == 1
