"""``steward.guard`` with the frontends' formats, on both backends (issue #15): the HITLRequest
keys of every approval interrupt, LangChain's and Agent Inbox's resumes, edits judged again by
the policy, and standing approvals. Every refused resume is checked to change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _support import ALICE, BOB, CAROL, EVE, stored
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
from test_approvals import (
    FRANK,
    RefundState,
    _audited,
    _verify,
    refund_runtime,
)

import steward
from steward import ApprovalInvalid, PolicyDenied
from steward.guardrails.request import hash_args


class ConfirmState(RefundState, total=False):
    confirm: bool


def _refund(state: ConfirmState) -> dict[str, Any]:
    """Acts with the arguments the guard returns: an approver may edit them."""
    decision = steward.guard("issue_refund", {"order_id": "98765", "amount": state["amount"]},
                             editable=True)
    confirmed = interrupt({"type": "confirm"}) if state.get("confirm") else ""
    approval = decision.approval
    how = (f"std:{approval.standing_id}" if approval and approval.standing_id else
           ",".join(approval.approvers) if approval else "-")
    return {"receipts": [f"{decision.args['amount']} by {how}{confirmed}"]}


@pytest.fixture
def grt(db_url: str) -> Iterator[steward.Runtime]:
    with refund_runtime(db_url) as runtime:
        yield runtime


def graph_of(rt: steward.Runtime, refund: Any = _refund) -> Any:
    """verify -> refund (``_refund``, or another node acting on the refund)."""
    builder = StateGraph(ConfirmState)
    builder.add_node("verify", _verify)
    builder.add_node("refund", refund)
    builder.add_edge(START, "verify")
    builder.add_edge("verify", "refund")
    return builder.compile(checkpointer=rt.checkpointer)


def _ask(graph: Any, rt: steward.Runtime, tid: str, amount: str, **extra: Any) -> Any:
    out = graph.invoke({"amount": amount, **extra}, rt.config(tid, ALICE))
    [waiting] = out["__interrupt__"]
    return waiting


def _resume(graph: Any, rt: steward.Runtime, tid: str, who: Any, value: Any) -> Any:
    return graph.invoke(Command(resume=value), rt.config(tid, who))


def _edit(amount: str) -> dict[str, Any]:
    return {"decisions": [{"type": "edit", "edited_action": {
        "name": "issue_refund", "args": {"order_id": "98765", "amount": amount}}}]}


def test_an_approval_interrupt_carries_langchains_hitl_request(grt: steward.Runtime) -> None:
    waiting = _ask(graph_of(grt), grt, "T", "120.00")
    value = waiting.value
    assert value["type"] == "approval_request" and value["required_roles"] == ["manager"]
    assert value["action_requests"] == [{
        "name": "issue_refund", "args": {"order_id": "98765", "amount": "120.00"},
        "description": "refunds above 100.00 need a manager"}]
    assert value["review_configs"] == [{"action_name": "issue_refund",
                                        "allowed_decisions": ["approve", "edit", "reject"]}]
    # The answer's schema is declared, for clients to render and LangGraph to check.
    schema = waiting.response_schema
    assert schema is not None and "anyOf" in schema
    info = grt.checkpointer.thread_info("T", ALICE)
    assert info is not None and info["waiting_on"][0]["roles"] == ["manager"]


def test_a_guard_that_is_not_editable_offers_no_edit_and_refuses_one(
        grt: steward.Runtime, db_url: str) -> None:
    def plain(state: RefundState) -> dict[str, Any]:
        decision = steward.guard("issue_refund", {"order_id": "98765", "amount": state["amount"]})
        return {"receipts": [f"{decision.args['amount']}"]}

    graph = graph_of(grt, plain)
    waiting = _ask(graph, grt, "T", "120.00")
    assert waiting.value["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    before = stored(db_url)
    with pytest.raises(ApprovalInvalid, match="cannot be edited"):
        _resume(graph, grt, "T", BOB, _edit("90.00"))
    assert stored(db_url) == before
    assert _resume(graph, grt, "T", BOB, {"decisions": [{"type": "approve"}]})["receipts"] == [
        "120.00"]


def test_langchain_decisions_approve_and_reject(grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T1", "120.00")
    out = _resume(graph, grt, "T1", BOB, {"decisions": [{"type": "approve"}]})
    assert out["receipts"] == ["120.00 by bob"]
    _ask(graph, grt, "T2", "130.00")
    with pytest.raises(PolicyDenied, match=r"rejected by bob \(not this month\)"):
        _resume(graph, grt, "T2", BOB, {"decisions": [{"type": "reject",
                                                       "message": "not this month"}]})
    [request] = grt.approvals.history("T2", ALICE)
    assert request["status"] == "rejected" and request["votes"][0]["comment"] == "not this month"


def test_agent_inbox_list_accept_and_edit_with_text_arguments(grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T1", "120.00")
    assert _resume(graph, grt, "T1", BOB, [{"type": "accept", "args": None}])["receipts"] == [
        "120.00 by bob"]
    _ask(graph, grt, "T2", "120.00")
    out = _resume(graph, grt, "T2", BOB, [{"type": "edit", "args": {
        "action": "issue_refund", "args": {"order_id": "98765", "amount": "95.50"}}}])
    assert out["receipts"] == ["95.50 by bob"]


def test_an_edit_is_approved_bound_to_its_hash_and_used_by_the_node(
        grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    asked = _ask(graph, grt, "T", "120.00", confirm=True).value
    out = _resume(graph, grt, "T", BOB, _edit("90.00"))
    assert out["__interrupt__"][0].value == {"type": "confirm"}
    # The node runs again from its first line: the edit recorded then is what it acts with.
    out = _resume(graph, grt, "T", ALICE, " ok")
    assert out["receipts"] == ["90.00 by bob ok"]
    [request] = grt.approvals.history("T", ALICE)
    edited = hash_args({"order_id": "98765", "amount": "90.00"})
    assert request["args_hash"] == asked["args_hash"] != edited
    assert request["status"] == "approved" and request["votes"][0]["args_hash"] == edited
    [vote] = _audited(grt, "T", "approval_vote")
    assert vote["edited_args"] == {"order_id": "98765", "amount": "90.00"}
    [outcome] = _audited(grt, "T", "approval_outcome")
    assert outcome["edited"] is True and outcome["args_hash"] == edited


@pytest.mark.parametrize(("amount", "says"), [
    ("600.00", "add up to at most 500.00"),  # past a hard forbid
    ("1500.00", "need the approval of 2"),  # more than the voter can approve alone
])
def test_an_edit_past_the_policy_is_refused_and_changes_nothing(
        grt: steward.Runtime, db_url: str, amount: str, says: str) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    with pytest.raises(ApprovalInvalid, match=says):
        _resume(graph, grt, "T", BOB, _edit(amount))
    assert stored(db_url) == before
    with pytest.raises(ApprovalInvalid, match=says):  # the pre-check says so as well
        grt.approvals.check_resume("T", BOB, _edit(amount))
    assert _resume(graph, grt, "T", BOB, {"decision": "approve"})["receipts"] == [
        "120.00 by bob"]


def test_a_standing_approval_lets_later_calls_pass_up_to_its_uses(grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T", "110.00")
    out = _resume(graph, grt, "T", BOB, {"decision": "approve", "standing": {
        "uses": 2, "expires_in": 600}})
    assert out["receipts"] == ["110.00 by bob"]
    [grant] = grt.approvals.standing("T", ALICE)
    assert (grant["granted_by"], grant["uses"], grant["used"], grant["action"]) == (
        "bob", 2, 0, "issue_refund")
    for amount, used in (("120.00", 1), ("130.00", 2)):
        out = graph.invoke({"amount": amount}, grt.config("T", ALICE))
        assert out["receipts"][-1] == f"{amount} by std:{grant['id']}"
        assert grt.approvals.standing("T", ALICE)[0]["used"] == used
    uses = _audited(grt, "T", "approval_standing_use")
    assert [u["standing_id"] for u in uses] == [grant["id"]] * 2
    assert [u["uses_left"] for u in uses] == [1, 0]
    # Used up: the next call asks again.
    assert "__interrupt__" in graph.invoke({"amount": "105.00"}, grt.config("T", ALICE))


def test_a_standing_approval_is_not_the_granters_own_and_can_be_revoked(
        grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T", "110.00")
    _resume(graph, grt, "T", BOB, {"decisions": [{"type": "approve", "standing": {
        "uses": 5, "expires_in": 600}}]})
    [grant] = grt.approvals.standing("T", ALICE)
    # Four eyes: Frank, a manager granted write, runs the thread; Bob's grant covers him, ...
    assert "__interrupt__" not in graph.invoke({"amount": "101.00"}, grt.config("T", FRANK))
    # ... but never Bob's own calls (BOB has write access by ROLES here).
    assert "__interrupt__" in graph.invoke({"amount": "102.00"}, grt.config("T", BOB))
    with pytest.raises(steward.ConfigError, match="no standing approval"):
        grt.approvals.revoke(grant["id"], EVE)  # another tenant's: not found
    with pytest.raises(steward.ThreadAccessDenied, match="may not revoke"):
        grt.approvals.revoke(grant["id"], CAROL)  # an auditor reads, no more
    revoked = grt.approvals.revoke(grant["id"], BOB)
    assert revoked["revoked_by"] == "bob" and revoked["uses_left"] == 4
    assert grt.approvals.revoke(grant["id"], BOB)["revoked_at"] == revoked["revoked_at"]
    [event] = _audited(grt, "T", "approval_standing_revoked")
    assert event["standing_id"] == grant["id"]


def test_a_standing_approval_expires(grt: steward.Runtime) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T", "110.00")
    _resume(graph, grt, "T", BOB, {"decision": "approve", "standing": {
        "uses": 5, "expires_in": 0.5}})
    time.sleep(0.6)
    assert "__interrupt__" in graph.invoke({"amount": "120.00"}, grt.config("T", ALICE))


def test_standing_or_edits_are_refused_where_several_must_approve(
        grt: steward.Runtime, db_url: str) -> None:
    graph = graph_of(grt)
    _ask(graph, grt, "T", "1200.00")
    before = stored(db_url)
    for value, says in (({"decision": "approve", "standing": {"uses": 2, "expires_in": 60}},
                         "needs 2 approvals"),
                        (_edit("1100.00"), "cannot be edited")):  # it offers no edit
        with pytest.raises(ApprovalInvalid, match=says):
            _resume(graph, grt, "T", BOB, value)
        assert stored(db_url) == before
    with pytest.raises(ApprovalInvalid, match="only an approval can be standing"):
        _resume(graph, grt, "T", BOB, {"decision": "reject", "standing": {
            "uses": 2, "expires_in": 60}})


def test_an_edit_keeps_the_real_value_of_arguments_shown_redacted(grt: steward.Runtime) -> None:
    """Agent Chat UI sends every argument back with an edit, as it was shown: one still
    reading ``[REDACTED:email]`` was left alone, and keeps its real value."""
    def notify(state: RefundState) -> dict[str, Any]:
        decision = steward.guard("issue_refund", {"amount": state["amount"],
                                                  "contact": "jane.doe@example.com"},
                                 editable=True)
        return {"receipts": [f"{decision.args['amount']} to {decision.args['contact']}"]}

    graph = graph_of(grt, notify)
    shown = _ask(graph, grt, "T", "120.00").value["action_requests"][0]["args"]
    assert shown["contact"] == "[REDACTED:email]"
    out = _resume(graph, grt, "T", BOB, {"decisions": [{"type": "edit", "edited_action": {
        "name": "issue_refund", "args": {**shown, "amount": "99.00"}}}]})
    assert out["receipts"] == ["99.00 to jane.doe@example.com"]


@pytest.mark.parametrize("editable", ["yes", 1, None])
def test_editable_must_be_a_bool_or_a_check(grt: steward.Runtime, db_url: str,
                                            editable: Any) -> None:
    def node(state: RefundState) -> dict[str, Any]:
        steward.guard("issue_refund", {"amount": state["amount"]}, editable=editable)
        return {}

    def asking(state: RefundState) -> dict[str, Any]:
        steward.request_approval("pay", {"amount": "1"}, required_roles="manager",
                                 reason="r", editable=editable)
        return {}

    for fn in (node, asking):
        graph = graph_of(grt, fn)
        before = stored(db_url)
        with pytest.raises(steward.ConfigError, match="editable is True"):
            graph.invoke({"amount": "120.00"}, grt.config("T", ALICE))
        assert stored(db_url)["steward_approvals"] == before["steward_approvals"] == []


def test_an_edit_check_refuses_before_the_vote_counts(grt: steward.Runtime, db_url: str) -> None:
    def checked(state: RefundState) -> dict[str, Any]:
        decision = steward.guard(
            "issue_refund", {"order_id": "98765", "amount": state["amount"]},
            editable=lambda a: None if set(a) == {"order_id", "amount"} else "no extras")
        return {"receipts": [decision.args["amount"]]}

    graph = graph_of(grt, checked)
    _ask(graph, grt, "T", "120.00")
    before = stored(db_url)
    extra = {"decisions": [{"type": "edit", "edited_action": {"name": "issue_refund", "args": {
        "order_id": "98765", "amount": "90.00", "note": "x"}}}]}
    with pytest.raises(ApprovalInvalid, match="do not fit: no extras"):
        _resume(graph, grt, "T", BOB, extra)
    assert stored(db_url) == before
    assert _resume(graph, grt, "T", BOB, _edit("90.00"))["receipts"] == ["90.00"]
