"""Guards and approval gates in real graphs, on both backends (issue #4).

Every refused resume is checked to change nothing: the rows of the thread's checkpoints,
writes, approval records and votes are compared before and after.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, BOB, CAROL, DAVE, EVE, execute, one_node, snapshot, stored
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, interrupt

import steward
from steward import ApprovalInvalid, Policy, PolicyDenied, Principal, ThreadAccessDenied
from steward.checkpointers.wakes import due_op

FRANK = Principal(id="frank", tenant="acme", roles=frozenset({"manager"}))
DIRECTOR = Principal(id="dora", tenant="acme", roles=frozenset({"director"}))
ROLES = {"manager": "write", "director": "write", "auditor": "read", "support": "write"}

REFUND_POLICY = """
@id("same-tenant")
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("big-refund") @approval("manager") @reason("refunds above 100.00 need a manager")
forbid (principal, action == Action::"issue_refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };

@id("huge-refund") @approval("manager") @quorum("2") @reason("refunds above 1000.00 need two")
forbid (principal, action == Action::"issue_refund", resource)
when { context.args.amount.greaterThan(decimal("1000.00")) };

@id("cap-per-thread") @reason("refunds on one thread add up to at most 500.00")
forbid (principal, action == Action::"issue_refund", resource)
when { context.cumulative.amount.greaterThan(decimal("500.00")) &&
       context.args.amount.lessThanOrEqual(decimal("1000.00")) };

@id("verify-first") @reason("verify_order must succeed first")
forbid (principal, action == Action::"issue_refund", resource)
unless { context.history has verify_order && context.history.verify_order.succeeded > 0 };
"""


class RefundState(TypedDict, total=False):
    amount: str
    receipts: Annotated[list[str], operator.add]


def _verify(state: RefundState) -> dict[str, Any]:
    steward.guard("verify_order", {"order_id": "98765"})
    return {}


def _refund(state: RefundState) -> dict[str, Any]:
    decision = steward.guard("issue_refund", {"order_id": "98765", "amount": state["amount"],
                                              "contact": "jane.doe@example.com"})
    who = ",".join(decision.approval.approvers) if decision.approval else "-"
    return {"receipts": [f"{state['amount']} by {who}"]}


def refund_graph(rt: steward.Runtime, *, verify: bool = True) -> Any:
    builder = StateGraph(RefundState)
    builder.add_node("refund", _refund)
    if verify:
        builder.add_node("verify", _verify)
        builder.add_edge(START, "verify")
        builder.add_edge("verify", "refund")
    else:
        builder.add_edge(START, "refund")
    builder.add_edge("refund", END)
    return builder.compile(checkpointer=rt.checkpointer)


def refund_runtime(db_url: str) -> steward.Runtime:
    """A runtime under the refund policy, with the test roles granted."""
    return steward.open(db_url, thread_roles=ROLES, lease_ttl=5,
                        policy=Policy.from_cedar(REFUND_POLICY))


@pytest.fixture
def grt(db_url: str) -> Iterator[steward.Runtime]:
    with refund_runtime(db_url) as runtime:
        yield runtime


def _audited(rt: steward.Runtime, tid: str, kind: str) -> list[dict[str, Any]]:
    """The payloads of a thread's audit events of one kind (the chain verified first)."""
    rt.audit.verify(tid)
    return [e.payload for e in rt.audit.events(tid, ALICE, kinds=[kind])]


def _pending(graph: Any, config: Any) -> dict[str, Any]:
    interrupts = graph.get_state(config).interrupts
    assert len(interrupts) == 1, interrupts
    value: dict[str, Any] = interrupts[0].value
    return value


def _ask(graph: Any, rt: steward.Runtime, tid: str, amount: str) -> dict[str, Any]:
    out = graph.invoke({"amount": amount}, rt.config(tid, ALICE))
    assert "__interrupt__" in out, out
    return _pending(graph, rt.config(tid, ALICE))


def _resume(graph: Any, rt: steward.Runtime, tid: str, who: Principal, value: Any) -> Any:
    return graph.invoke(Command(resume=value), rt.config(tid, who))


APPROVE = {"decision": "approve", "comment": "ok"}


def test_a_node_retried_after_its_approval_keeps_it(grt: steward.Runtime) -> None:
    """A RetryPolicy runs the approved node again from its first line: the guard is the same
    call site, the vote stands, and nobody is asked again (found by ``steward eval``: the
    retry used to open a second request, which stayed pending after the thread finished)."""
    failures = [ConnectionError("the provider dropped the connection")]

    def refund_then_call(state: RefundState) -> dict[str, Any]:
        out = _refund(state)
        if failures:
            raise failures.pop()
        return out

    builder = StateGraph(RefundState)
    builder.add_node("verify", _verify)
    builder.add_node("refund", refund_then_call, retry_policy=RetryPolicy(
        max_attempts=2, initial_interval=0.0, jitter=False, retry_on=ConnectionError))
    builder.add_edge(START, "verify")
    builder.add_edge("verify", "refund")
    graph = builder.compile(checkpointer=grt.checkpointer)
    _ask(graph, grt, "T-retry", "150.00")
    out = _resume(graph, grt, "T-retry", BOB, APPROVE)
    assert out["receipts"] == ["150.00 by bob"] and not failures
    assert [(r["status"], len(r["votes"])) for r in grt.approvals.history("T-retry", ALICE)] \
        == [("approved", 1)]
    assert len(_audited(grt, "T-retry", "approval_request")) == 1


# -- decisions -----------------------------------------------------------------------------------


def test_small_refund_is_allowed_and_big_one_waits_for_a_manager(grt: steward.Runtime) -> None:
    graph = refund_graph(grt)
    assert graph.invoke({"amount": "50.00"}, grt.config("T1", ALICE))["receipts"] == ["50.00 by -"]
    request = _ask(graph, grt, "T2", "120.00")
    assert request["type"] == "approval_request"
    assert request["action"] == "issue_refund"
    assert request["required_roles"] == ["manager"] and request["quorum"] == 1
    assert request["requested_by"] == "alice"
    assert request["reasons"] == ["refunds above 100.00 need a manager"]
    assert request["args"]["contact"] == "[REDACTED:email]"  # redacted before anyone sees it
    assert request["args_hash"].startswith("sha256:") and request["id"].startswith("apr_")
    out = _resume(graph, grt, "T2", BOB, APPROVE)
    assert out["receipts"] == ["120.00 by bob"]


def test_a_denied_action_raises_and_keeps_the_last_checkpoint(grt: steward.Runtime,
                                                              db_url: str) -> None:
    graph = refund_graph(grt, verify=False)  # verify_order never ran: verify-first forbids
    with pytest.raises(PolicyDenied, match="verify_order must succeed first") as caught:
        graph.invoke({"amount": "20.00"}, grt.config("T", ALICE))
    assert caught.value.decision.policy_ids == ("verify-first",)
    state = graph.get_state(grt.config("T", ALICE))
    assert state.next == ("refund",) and not state.values.get("receipts")
    writes = [r for r in snapshot(db_url)["steward_writes"] if r[0] == "T"]
    assert not any(r[5] == "__error__" for r in writes)  # nothing stored for the denied task


def test_cumulative_cap_per_thread_uses_the_history(grt: steward.Runtime) -> None:
    graph = refund_graph(grt)
    config = grt.config("T", ALICE)
    assert graph.invoke({"amount": "90.00"}, config)["receipts"] == ["90.00 by -"]
    assert graph.invoke({"amount": "100.00"}, config)["receipts"][-1] == "100.00 by -"
    _ask(graph, grt, "T", "300.00")  # 490 in all: allowed once a manager approves
    assert _resume(graph, grt, "T", BOB, APPROVE)["receipts"][-1] == "300.00 by bob"
    with pytest.raises(PolicyDenied, match=r"add up to at most 500\.00"):
        graph.invoke({"amount": "20.00"}, config)  # 510 > 500


def test_quorum_of_two_counts_distinct_approvers(grt: steward.Runtime, db_url: str) -> None:
    graph = refund_graph(grt)
    request = _ask(graph, grt, "T", "1500.00")
    assert request["quorum"] == 2
    out = _resume(graph, grt, "T", BOB, APPROVE)
    waiting = out["__interrupt__"][0].value
    assert waiting["id"] == request["id"]
    assert [v["voter"] for v in waiting["votes"]] == ["bob"]
    # Running the thread again without a value must not reuse Bob's resume as Frank's vote.
    out = graph.invoke(None, grt.config("T", FRANK))
    assert [v["voter"] for v in out["__interrupt__"][0].value["votes"]] == ["bob"]
    before = stored(db_url)
    with pytest.raises(ApprovalInvalid, match="already voted"):
        _resume(graph, grt, "T", BOB, APPROVE)
    assert stored(db_url) == before
    out = _resume(graph, grt, "T", FRANK, {"decision": "approve"})
    assert out["receipts"] == ["1500.00 by bob,frank"]
    [record] = grt.approvals.history("T", CAROL)
    assert record["status"] == "approved"
    assert [(v["voter"], v["role"], v["args_hash"]) for v in record["votes"]] == [
        ("bob", "manager", request["args_hash"]), ("frank", "manager", request["args_hash"])]


# -- the rules of a vote -------------------------------------------------------------------------


def test_requester_cannot_approve_and_leaves_no_stale_approval(grt: steward.Runtime,
                                                               db_url: str) -> None:
    """The LangGraph trap: a value refused inside the node must not reach the next resume."""
    graph = refund_graph(grt)
    request = _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    with pytest.raises(ApprovalInvalid, match="four eyes"):
        _resume(graph, grt, "T", ALICE, APPROVE)
    assert stored(db_url) == before
    [refused] = _audited(grt, "T", "approval_invalid")
    assert refused["request_id"] == request["id"] and "four eyes" in refused["reason"]
    assert _pending(graph, grt.config("T", ALICE))["id"] == request["id"]
    # Resuming with no value must not pick up Alice's approval either.
    out = graph.invoke(None, grt.config("T", BOB))
    assert out["__interrupt__"][0].value["id"] == request["id"]
    # Bob's rejection is Bob's, not Alice's approval handed to him.
    with pytest.raises(PolicyDenied, match="rejected by bob"):
        _resume(graph, grt, "T", BOB, {"decision": "reject", "comment": "no"})
    [record] = grt.approvals.history("T", ALICE)
    assert record["status"] == "rejected"
    assert [(v["voter"], v["decision"]) for v in record["votes"]] == [("bob", "reject")]
    [vote] = _audited(grt, "T", "approval_vote")
    assert (vote["voter"], vote["decision"], vote["args_hash"]) == ("bob", "reject",
                                                                    request["args_hash"])
    assert vote["saw_hash"].startswith("sha256:")  # the hash of exactly what Bob was shown


@pytest.mark.parametrize(("who", "error", "match"), [
    (DAVE, ApprovalInvalid, "none of the required roles"),
    (CAROL, ThreadAccessDenied, "read"),  # an auditor may read the thread, not resume it
    (EVE, ThreadAccessDenied, "another tenant"),
])
def test_approvers_without_the_role_or_tenant_are_refused(
        grt: steward.Runtime, db_url: str, who: Principal, error: type[Exception],
        match: str) -> None:
    graph = refund_graph(grt)
    request = _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    with pytest.raises(error, match=match):
        _resume(graph, grt, "T", who, APPROVE)
    assert stored(db_url) == before
    assert _resume(graph, grt, "T", BOB, APPROVE)["receipts"] == ["120.00 by bob"]
    assert grt.approvals.history("T", ALICE)[0]["id"] == request["id"]


@pytest.mark.parametrize("payload", [
    "approve", 1, ["approve"], {"decision": "yes"}, {"decision": None},
    {"decision": "approve", "extra": 1}, {"decision": "approve", "comment": 5},
    {"decision": "approve", "comment": "x" * 100_000}, {"comment": "ok"},
    {"decision": "approve" * 10_000},
])
def test_malformed_payloads_are_refused_and_change_nothing(grt: steward.Runtime, db_url: str,
                                                           payload: Any) -> None:
    graph = refund_graph(grt)
    _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    with pytest.raises(ApprovalInvalid, match="still waits"):
        _resume(graph, grt, "T", BOB, payload)
    assert stored(db_url) == before
    assert _resume(graph, grt, "T", BOB, APPROVE)["receipts"] == ["120.00 by bob"]


def test_an_empty_resume_is_no_vote(grt: steward.Runtime, db_url: str) -> None:
    """LangGraph reads Command(resume={}) as a map of interrupt ids naming none."""
    graph = refund_graph(grt)
    request = _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    out = _resume(graph, grt, "T", BOB, {})
    assert out["__interrupt__"][0].value["id"] == request["id"]
    after = stored(db_url)
    for table in before:
        old, new = set(map(repr, before[table])), set(map(repr, after[table]))
        assert (sorted(old - new), sorted(new - old)) == ([], []), table


# -- expiry and escalation -----------------------------------------------------------------------


def test_an_expired_request_cannot_be_approved_and_is_asked_again(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, policy=Policy.from_cedar(REFUND_POLICY),
                      approval_expires_in=0.3) as short:
        graph = refund_graph(short)
        config = short.config("T", ALICE)
        first = _ask(graph, short, "T", "120.00")
        assert first["expires_at"] is not None
        time.sleep(0.4)
        assert short.approvals.pending(BOB) == []  # expired requests are not offered
        with pytest.raises(ApprovalInvalid, match="expired"):
            _resume(graph, short, "T", BOB, APPROVE)
        [record] = short.approvals.history("T", ALICE)
        assert record["status"] == "expired"
        # Next touch: the node learns it expired (the guard denies) ...
        with pytest.raises(PolicyDenied, match="not approved in time"):
            graph.invoke(None, config)
        # ... and when it runs again it asks again, with a new request.
        out = graph.invoke(None, config)
        second = out["__interrupt__"][0].value
        assert second["id"] != first["id"] and second["args_hash"] == first["args_hash"]
        assert [p["id"] for p in short.approvals.pending(BOB)] == [second["id"]]


def _escalating(state: RefundState) -> dict[str, Any]:
    approval = steward.request_approval(
        "wire_transfer", {"amount": state["amount"]}, required_roles=["manager"],
        reason="large transfer", expires_in=0.3, on_expire=steward.Escalate(["director"]))
    return {"receipts": [f"{approval.decision} by {','.join(approval.approvers)}"]}


def test_expiry_escalates_to_other_roles(grt: steward.Runtime) -> None:
    builder = one_node(RefundState, _escalating)
    graph = builder.compile(checkpointer=grt.checkpointer)
    first = graph.invoke({"amount": "9000"}, grt.config("T", ALICE))["__interrupt__"][0].value
    time.sleep(0.4)
    assert grt.sweep() == []
    [escalated] = grt.approvals.pending(DIRECTOR)
    assert escalated["required_roles"] == ["director"] and escalated["id"] != first["id"]
    assert grt.approvals.pending(BOB) == []
    with pytest.raises(ApprovalInvalid, match="none of the required roles"):
        _resume(graph, grt, "T", BOB, APPROVE)
    out = _resume(graph, grt, "T", DIRECTOR, APPROVE)
    assert out["receipts"] == ["approve by dora"]
    statuses = [r["status"] for r in grt.approvals.history("T", ALICE)]
    assert statuses == ["escalated", "approved"]


def test_an_escalation_gives_the_new_roles_the_approvers_reach_at_once(db_url: str) -> None:
    """No grant for directors: the escalation itself (one transaction with the expiry) lets
    them answer, before any run shows them the new request, and marks the thread for a
    worker to wake; the audit says the timer did it."""
    with steward.open(db_url, thread_roles={"manager": "write"}, lease_ttl=5) as rt:
        graph = one_node(RefundState, _escalating).compile(checkpointer=rt.checkpointer)
        first = graph.invoke({"amount": "9000"}, rt.config("T", ALICE))["__interrupt__"][0]
        time.sleep(0.4)
        with pytest.raises(steward.ThreadAccessDenied):
            rt.checkpointer.check_access("T", DIRECTOR, "read")
        assert len(rt.approvals.expire()) == 1
        [waiting] = rt.checkpointer.thread_info("T", ALICE)["waiting_on"]
        [successor] = rt.approvals.pending(DIRECTOR)
        assert waiting["roles"] == ["director"] and waiting["escalated_to"] == successor["id"]
        assert waiting["request"] == first.value["id"]
        [row] = rt.checkpointer.driver.run(due_op(rt.checkpointer.threads), write=False)
        assert (row.thread_id, row.why, row.run_as["id"]) == ("T", "escalated", "alice")
        rt.checkpointer.check_access("T", DIRECTOR, "read")  # the reach followed the roles
        assert rt.approvals.expire() == []  # fired once
        [fired] = _audited(rt, "T", "approval_escalated")
        assert fired["successor"] == successor["id"] and fired["required_roles"] == ["director"]
        out = _resume(graph, rt, "T", DIRECTOR, APPROVE)
        assert out["receipts"] == ["approve by dora"]
        # The run that took the lease spent the mark: nothing is left to wake.
        assert rt.checkpointer.driver.run(due_op(rt.checkpointer.threads), write=False) == []


# -- bound to the arguments ----------------------------------------------------------------------

EXTERNAL: dict[str, str] = {}


def _pay_then_confirm(state: RefundState) -> dict[str, Any]:
    amount = EXTERNAL["amount"]  # read from outside the state: may differ on a re-run
    approval = steward.request_approval("pay", {"amount": amount}, required_roles="manager",
                                        reason="payment")
    confirmed = interrupt({"type": "confirm", "amount": amount})
    return {"receipts": [f"paid {amount} approved by {approval.approvers} ({confirmed})"]}


def test_changed_arguments_after_approval_are_asked_again(grt: steward.Runtime) -> None:
    builder = one_node(RefundState, _pay_then_confirm)
    graph = builder.compile(checkpointer=grt.checkpointer)
    EXTERNAL["amount"] = "100"
    first = graph.invoke({}, grt.config("T", ALICE))["__interrupt__"][0].value
    out = _resume(graph, grt, "T", BOB, APPROVE)
    assert out["__interrupt__"][0].value == {"type": "confirm", "amount": "100"}
    EXTERNAL["amount"] = "999"  # the node would now pay another amount than was approved
    out = _resume(graph, grt, "T", ALICE, "yes")
    again = out["__interrupt__"][0].value
    assert again["type"] == "approval_request" and again["args"] == {"amount": "999"}
    assert again["args_hash"] != first["args_hash"]
    out = _resume(graph, grt, "T", FRANK, APPROVE)
    assert out["__interrupt__"][0].value == {"type": "confirm", "amount": "999"}
    out = _resume(graph, grt, "T", ALICE, "yes")
    assert out["receipts"] == ["paid 999 approved by ('frank',) (yes)"]


# -- records ------------------------------------------------------------------------------------


def test_pending_lists_what_a_principal_may_approve(grt: steward.Runtime) -> None:
    graph = refund_graph(grt)
    a = _ask(graph, grt, "T1", "120.00")
    b = _ask(graph, grt, "T2", "1500.00")
    assert [p["id"] for p in grt.approvals.pending(BOB)] == [a["id"], b["id"]]
    assert grt.approvals.pending(ALICE) == []  # the requester
    assert grt.approvals.pending(CAROL) == []  # no required role
    assert grt.approvals.pending(EVE) == []  # another tenant
    _resume(graph, grt, "T2", BOB, APPROVE)
    assert [p["id"] for p in grt.approvals.pending(BOB)] == [a["id"]]  # voted already
    first, second = grt.approvals.pending(FRANK.to_dict())
    assert (first["id"], second["id"]) == (a["id"], b["id"])
    assert [v["voter"] for v in second["votes"]] == ["bob"] and first["votes"] == []
    with pytest.raises(ThreadAccessDenied):
        grt.approvals.history("T1", EVE)


def test_shadow_policies_are_recorded_not_enforced(db_url: str) -> None:
    strict = Policy.from_cedar('@id("no-refunds") forbid (principal, action, resource);\n'
                               "permit (principal, action, resource);", enforce=False)
    allow = Policy.from_cedar('@id("all") permit (principal, action, resource);')
    seen: list[steward.Decision] = []

    def node(state: RefundState) -> dict[str, Any]:
        seen.append(steward.guard("issue_refund", {"amount": "5.00"}))
        return {}

    builder = one_node(RefundState, node)
    with steward.open(db_url, policy=[allow, strict]) as rt:
        builder.compile(checkpointer=rt.checkpointer).invoke({}, rt.config("T", ALICE))
    [decision] = seen
    assert decision.allowed and decision.policy_ids == ("all",)
    [shadow] = decision.shadow
    assert shadow.denied and not shadow.enforced and shadow.policy_ids == ("no-refunds",)


def test_guard_outside_a_steward_graph_says_what_to_do(db_url: str) -> None:
    with pytest.raises(steward.ConfigError, match="inside a node"):
        steward.guard("x", {})

    def node(state: RefundState) -> dict[str, Any]:
        steward.guard("x", {})
        return {}

    builder = one_node(RefundState, node)
    with steward.open(db_url) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        with pytest.raises(steward.ConfigError, match="who acts"):
            graph.invoke({}, rt.config("T"))  # the runtime's config, with no principal
        # A plain config carries no runtime: the node says how to run it.
        with pytest.raises(steward.ConfigError, match=r"run with rt\.config\(thread_id"):
            graph.invoke({}, {"configurable": {"thread_id": "T2", "principal": ALICE}})
    from langgraph.checkpoint.memory import InMemorySaver

    with pytest.raises(steward.ConfigError, match="Steward runtime"):
        builder.compile(checkpointer=InMemorySaver()).invoke(
            {}, {"configurable": {"thread_id": "T", "principal": ALICE}})


def test_bad_guardrail_options_are_refused_before_opening(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    with pytest.raises(steward.ConfigError, match="policy="):
        steward.open(url, policy="permit (principal, action, resource);")  # type: ignore[arg-type]
    with pytest.raises(steward.ConfigError, match="approval_expires_in"):
        steward.open(url, approval_expires_in=-1)
    assert not (tmp_path / "x.db").exists()


async def test_async_nodes_use_the_async_twins(db_url: str) -> None:
    async def node(state: RefundState) -> dict[str, Any]:
        decision = await steward.aguard("issue_refund", {"amount": state["amount"]})
        return {"receipts": [f"{decision.effect} {decision.approval is not None}"]}

    policy = Policy.from_cedar(
        "permit (principal, action, resource);\n"
        '@approval("manager") forbid (principal, action, resource) '
        'when { context.args.amount.greaterThan(decimal("100.00")) };')
    builder = one_node(RefundState, node)
    async with steward.aopen(db_url, thread_roles=ROLES, policy=policy) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        out = await graph.ainvoke({"amount": "500.00"}, rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["required_roles"] == ["manager"]
        assert [p["thread_id"] for p in await rt.approvals.apending(BOB)] == ["T"]
        with pytest.raises(ApprovalInvalid):
            await graph.ainvoke(Command(resume=APPROVE), rt.config("T", ALICE))
        out = await graph.ainvoke(Command(resume=APPROVE), rt.config("T", BOB))
        assert out["receipts"] == ["allow True"]
        assert [r["status"] for r in await rt.approvals.ahistory("T", BOB)] == ["approved"]


def test_the_null_task_id_is_langgraphs() -> None:
    from langgraph._internal._constants import NULL_TASK_ID

    from steward.checkpointers import saver

    assert saver.NULL_TASK_ID == NULL_TASK_ID


@pytest.mark.parametrize(("call", "match"), [
    (lambda: steward.guard("", {}), "action's name"),
    (lambda: steward.guard("pay", ["amount"]), "as a dict"),  # type: ignore[arg-type]
    (lambda: steward.guard("pay", {}, resource=("Order",)), "resource is a"),  # type: ignore[arg-type]
    (lambda: steward.guard("pay", {}, expires_in=-5), "expires_in must be"),
    (lambda: steward.guard("pay", {}, on_expire="ignore"), "on_expire is"),  # type: ignore[arg-type]
    (lambda: steward.request_approval("pay", {}, required_roles=[], reason="r"),
     "at least one role"),
    (lambda: steward.request_approval("pay", {}, required_roles="m", reason="r", quorum=0),
     "quorum must be"),
    (lambda: steward.request_approval("pay", {}, required_roles="m", reason="r",
                                      on_expire=steward.Escalate([])), "at least one role"),
])
def test_bad_guard_and_approval_options_are_config_errors(grt: steward.Runtime, db_url: str,
                                                          call: Any, match: str) -> None:
    def node(state: RefundState) -> dict[str, Any]:
        call()
        return {"receipts": ["acted"]}

    graph = one_node(RefundState, node).compile(checkpointer=grt.checkpointer)
    with pytest.raises(steward.ConfigError, match=match):
        graph.invoke({}, grt.config("T", ALICE))
    assert not graph.get_state(grt.config("T", ALICE)).values.get("receipts")
    assert execute(db_url, "SELECT count(*) FROM steward_approvals") == [(0,)]


def test_tool_executor_approval_options_are_checked() -> None:
    from steward.nodes import ToolExecutor

    def pay(amount: str) -> str:
        """Pay."""
        return amount

    with pytest.raises(steward.ConfigError, match="expires_in and on_expire"):
        ToolExecutor([pay], approvals={"pay": {"wait": 3}})


# -- checking a resume before the run (hosts such as the LangGraph server) ------------------------


def test_check_resume_refuses_what_the_node_would_and_changes_nothing(
        grt: steward.Runtime, db_url: str) -> None:
    graph = refund_graph(grt)
    request = _ask(graph, grt, "C1", "120.00")
    before = stored(db_url)
    cases = ((ALICE, APPROVE, "four eyes", False), (CAROL, APPROVE, "may not write", None),
             (DAVE, APPROVE, "required roles", False),
             (BOB, {"decision": "maybe"}, "'approve' or 'reject'", True),
             (BOB, "yes", "Command(resume=", True), (EVE, APPROVE, "another tenant", None))
    for who, value, says, malformed in cases:
        with pytest.raises(steward.StewardError, match=re.escape(says)) as caught:
            grt.approvals.check_resume("C1", who, value)
        if malformed is not None:
            assert isinstance(caught.value, ApprovalInvalid)
            assert caught.value.malformed is malformed
        else:
            assert isinstance(caught.value, ThreadAccessDenied)
        assert stored(db_url) == before
    refused = _audited(grt, "C1", "approval_invalid")
    assert [p["request_id"] for p in refused] == [request["id"]] * 4
    [interrupt_id] = [i.id for i in graph.get_state(grt.config("C1", ALICE)).interrupts]
    grt.approvals.check_resume("C1", BOB, APPROVE)  # the manager's vote would be taken
    grt.approvals.check_resume("C1", BOB, {interrupt_id: APPROVE})
    with pytest.raises(ApprovalInvalid, match="four eyes"):
        grt.approvals.check_resume("C1", ALICE, {interrupt_id: APPROVE})
    assert stored(db_url) == before
    assert _resume(graph, grt, "C1", BOB, APPROVE)["receipts"] == ["120.00 by bob"]
    grt.approvals.check_resume("C1", ALICE, APPROVE)  # nothing waits: the node would decide


async def test_acheck_resume_is_the_async_twin(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles=ROLES,
                             policy=Policy.from_cedar(REFUND_POLICY)) as rt:
        graph = refund_graph(rt)
        await graph.ainvoke({"amount": "120.00"}, rt.config("A1", ALICE))
        with pytest.raises(ApprovalInvalid, match="four eyes"):
            await rt.approvals.acheck_resume("A1", ALICE, APPROVE)
        await rt.approvals.acheck_resume("A1", BOB, APPROVE)
