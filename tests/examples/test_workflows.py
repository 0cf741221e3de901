"""The example workflows, end to end on both backends (issue #7)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _support import ALICE
from langgraph.types import Command

import steward
from steward.examples import WORKFLOWS
from steward.examples.access import expire_grants, grants

SAM = steward.Principal(id="sam", tenant="acme", roles=frozenset({"security"}))
BOB = steward.Principal(id="bob", tenant="acme", roles=frozenset({"manager"}))
ROLES = {"security": "write", "manager": "write"}


@pytest.fixture(autouse=True)
def _records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_DEMO_RECORDS", str(tmp_path / "records.db"))


def _access(rt: steward.Runtime) -> Any:
    return WORKFLOWS["access"].build().compile(checkpointer=rt.checkpointer)


def _ask(**request: Any) -> dict[str, Any]:
    return WORKFLOWS["access"].input(request)


def test_a_read_grant_is_written_by_the_provisioning_identity(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["access"].policy()) as rt:
        out = _access(rt).invoke(_ask(user_id="dana", role="read", days=7),
                                 rt.config("A1", ALICE))
    assert out["outcome"]["status"] == "done"
    lookup, grant, note = (s["result"] for s in out["plan"])
    assert lookup["read_as"] == "svc-directory-reader" and lookup["department"] == "finance"
    assert grant["written_as"] == "svc-provisioner" and grant["on_behalf_of"] == "alice"
    [stored] = grants("dana")
    assert (stored["role"], stored["requested_by"], stored["revoked_at"]) == ("read", "alice",
                                                                              None)
    assert note == "notified dana"


def test_admin_rights_wait_for_security_and_are_granted_once(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["access"].policy()) as rt:
        graph = _access(rt)
        out = graph.invoke(_ask(user_id="omar", role="admin", days=3), rt.config("A2", ALICE))
        [request] = [i.value for i in out["__interrupt__"]]
        assert request["required_roles"] == ["security"] and grants("omar") == []
        assert [p["id"] for p in rt.approvals.pending(SAM)] == [request["id"]]
        assert rt.approvals.pending(BOB) == []  # a manager is not the security team
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("A2", SAM))
        assert out["outcome"]["status"] == "done"
        assert [g["role"] for g in grants("omar")] == ["admin"]
        assert out["approvals"][0]["approvers"] == ["sam"]


@pytest.mark.parametrize(("request_", "reason"), [
    ({"user_id": "omar", "role": "read", "days": 365}, "at most 30 days"),
    ({"user_id": "alice", "role": "read", "days": 1}, "nobody grants access to themselves"),
])
def test_least_privilege_rules_deny(db_url: str, request_: dict[str, Any],
                                    reason: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["access"].policy()) as rt:
        out = _access(rt).invoke(_ask(**request_), rt.config("A3", ALICE))
    assert out["outcome"]["status"] == "failed" and reason in out["outcome"]["reason"]
    assert grants(request_["user_id"]) == []


def test_grants_expire(db_url: str) -> None:
    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["access"].policy()) as rt:
        _access(rt).invoke(_ask(user_id="dana", role="read", days=2), rt.config("A4", ALICE))
    [grant] = grants("dana")
    assert expire_grants(now=time.time() + 86400) == []  # one day on: still valid
    assert expire_grants(now=time.time() + 3 * 86400) == [grant["grant_id"]]
    assert grants("dana")[0]["revoked_at"] is not None


CONTROLLER_1 = steward.Principal(id="cleo", tenant="acme", roles=frozenset({"controller"}))
CONTROLLER_2 = steward.Principal(id="carl", tenant="acme", roles=frozenset({"controller"}))
CFO = steward.Principal(id="fran", tenant="acme", roles=frozenset({"cfo"}))
CLOSE_ROLES = {"controller": "write", "cfo": "write"}


def _close(rt: steward.Runtime) -> Any:
    return WORKFLOWS["close"].build().compile(checkpointer=rt.checkpointer)


def test_a_close_needs_two_controllers_and_happens_once(db_url: str) -> None:
    from steward.examples.close import closes

    with steward.open(db_url, thread_roles=CLOSE_ROLES,
                      policy=WORKFLOWS["close"].policy()) as rt:
        graph = _close(rt)
        start = WORKFLOWS["close"].input({"period": "2026-10"})
        out = graph.invoke(start, rt.config("C1", ALICE))
        request = out["__interrupt__"][0].value
        assert request["quorum"] == 2 and request["args"]["total_variance"] == "20.00"
        assert request["required_roles"] == ["controller"]  # within tolerance: no CFO
        reconciled = [s for s in graph.get_state(rt.config("C1", ALICE)).values["plan"]
                      if s["tool"] == "reconcile_account"]
        assert [s["result"]["variance"] for s in reconciled] == ["0.00", "0.00", "20.00"]
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("C1",
                                                                              CONTROLLER_1))
        assert [v["voter"] for v in out["__interrupt__"][0].value["votes"]] == ["cleo"]
        assert closes("2026-10") == []
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("C1",
                                                                              CONTROLLER_2))
        assert out["outcome"]["status"] == "done" and len(closes("2026-10")) == 1
        again = graph.invoke(start, rt.config("C1", ALICE))  # the same thread, once more
        assert again["outcome"]["status"] == "done"  # the plan was done: nothing re-runs
        assert len(closes("2026-10")) == 1


def test_a_large_variance_brings_in_the_cfo_and_a_wait_escalates(db_url: str) -> None:
    with steward.open(db_url, thread_roles=CLOSE_ROLES, policy=WORKFLOWS["close"].policy(),
                      ) as rt:
        graph = _close(rt)
        out = graph.invoke(WORKFLOWS["close"].input({"period": "2026-11"}),
                           rt.config("C2", ALICE))
        request = out["__interrupt__"][0].value
        assert request["args"]["total_variance"] == "500.00"
        assert request["required_roles"] == ["cfo", "controller"]
        assert "tolerance" in " ".join(request["reasons"])
        assert request["expires_at"] is not None  # two days, then the CFO is asked
        closed = rt.approvals.expire(now=time.time() + 3 * 86400)
        assert closed == [request["id"]]
        [escalated] = rt.approvals.pending(CFO)
        assert escalated["required_roles"] == ["cfo"] and escalated["id"] != request["id"]


CAROL = steward.Principal(id="carol", tenant="acme", roles=frozenset({"compliance-officer"}))
TEAM_ROLES = {"compliance-officer": "write"}


def _research(rt: steward.Runtime) -> Any:
    return WORKFLOWS["research"].build().compile(checkpointer=rt.checkpointer)


def test_a_research_team_shares_one_context_under_three_identities(db_url: str) -> None:
    from steward.examples.research import reports, reviews

    topic = "vendor:acme-analytics"
    with steward.open(db_url, thread_roles=TEAM_ROLES,
                      policy=WORKFLOWS["research"].policy()) as rt:
        graph = _research(rt)
        out = graph.invoke(WORKFLOWS["research"].input({}, "research"),
                           rt.config("R1", ALICE))
        [request] = [i.value for i in out["__interrupt__"]]
        # The summarizer asked on Alice's behalf: the review flagged two findings.
        assert (request["action"], request["requested_by"]) == ("publish_summary", "alice")
        assert request["args"]["flags"] == 2 and request["required_roles"] == [
            "compliance-officer"]
        assert all("@" not in f for f in request["args"]["findings"])  # redacted
        assert reports(topic) == []
        with pytest.raises(steward.ApprovalInvalid, match="cannot vote on its own"):
            graph.invoke(Command(resume={"decision": "approve"}), rt.config("R1", ALICE))
        out = graph.invoke(Command(resume={"decision": "approve"}), rt.config("R1", CAROL))
        assert out["outcome"] == {"status": "done",
                                  "members": ["compliance", "researcher", "summarizer"]}
        assert [s["id"] for s in out["plan"]] == ["researcher.s1", "compliance.s1",
                                                 "summarizer.s1"]
        assert {m: i["agent"] for m, i in out["members"].items()} == {
            "researcher": "agent-researcher", "compliance": "agent-compliance",
            "summarizer": "agent-writer"}
        [review] = reviews(topic)
        assert (review["reviewer"], review["on_behalf_of"]) == ("agent-compliance", "alice")
        assert sorted(f["source"] for f in review["flags"]) == ["S3", "S4"]
        [report] = reports(topic)
        assert report["author"] == "agent-writer" and "38%" not in report["body"]
        guards = rt.audit.events("R1", ALICE, kinds=["guard"])
        assert [(e.principal_id, e.payload["action"], e.payload["on_behalf_of"])
                for e in guards][:3] == [
            ("agent-researcher", "search_sources", "alice"),
            ("agent-compliance", "review_findings", "alice"),
            ("agent-writer", "publish_summary", "alice")]
        assert rt.audit.verify("R1") > 0
        graph.invoke(None, rt.config("R1", ALICE))  # run again: nothing is published twice
        assert len(reports(topic)) == 1


async def test_a_research_team_runs_async(db_url: str) -> None:
    from steward.examples.research import reports

    async with steward.aopen(db_url, thread_roles=TEAM_ROLES,
                             policy=WORKFLOWS["research"].policy()) as rt:
        graph = _research(rt)
        out = await graph.ainvoke(WORKFLOWS["research"].input({}, "research"),
                                  rt.config("R3", ALICE))
        assert out["__interrupt__"]
        out = await graph.ainvoke(Command(resume={"decision": "approve"}),
                                  rt.config("R3", CAROL))
        assert out["outcome"]["status"] == "done"
        assert [r["author"] for r in reports("vendor:acme-analytics")] == ["agent-writer"]


def _refund(rt: steward.Runtime) -> Any:
    return WORKFLOWS["refund"].build().compile(checkpointer=rt.checkpointer)


def test_a_refund_runs_every_step_once_and_closes_the_ticket(db_url: str) -> None:
    from steward.examples.refund import outbox, payments, ticket

    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["refund"].policy()) as rt:
        graph = _refund(rt)
        out = graph.invoke(WORKFLOWS["refund"].input({}), rt.config("F1", ALICE))
        [request] = [i.value for i in out["__interrupt__"]]
        assert request["args"] == {"order_id": "98765", "amount": "120.00"}
        assert payments("98765") == [] and ticket("98765") == ("open", "")
        out = graph.invoke(Command(resume={"decision": "approve", "comment": "regular"}),
                           rt.config("F1", BOB))
        graph.invoke(None, rt.config("F1", BOB))  # again: nothing happens twice
        assert out["status"] == "refunded" and out["receipt"].startswith("TXN-")
        assert [txn for txn, _, _ in payments("98765")] == [out["receipt"]]
        [(subject, body)] = outbox("jane.doe@example.com")
        assert out["receipt"] in subject and "$120.00" in body
        assert ticket("98765") == ("closed", f"refunded $120.00 as {out['receipt']}, "
                                             "approved by bob")
        assert [e.node for e in rt.audit.events("F1", ALICE, kinds=["effect_call"])] == [
            "issue_refund", "email_receipt", "update_ticket"]
        # The order is refunded in full: a second request for it is refused, nothing paid.
        again = graph.invoke(WORKFLOWS["refund"].input({"amount": "10.00"}),
                             rt.config("F2", ALICE))
        assert again["status"] == "rejected: 10.00 asked, 0.00 refundable"
        assert len(payments("98765")) == 1


@pytest.mark.parametrize(("request_", "status"), [
    ({"order_id": "nope"}, "rejected: no such order nope"),
    ({"order_id": "12345", "amount": "50.00"}, "rejected: 50.00 asked, 45.50 refundable"),
    ({"order_id": "12345", "amount": "lots"}, "rejected: amount 'lots' is not a number"),
    ({"order_id": "12345", "amount": "-5"}, "rejected: -5 asked, 45.50 refundable"),
])
def test_a_refund_that_cannot_be_made_ends_saying_why(db_url: str, request_: dict[str, Any],
                                                      status: str) -> None:
    from steward.examples.refund import payments, ticket

    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["refund"].policy()) as rt:
        out = _refund(rt).invoke(WORKFLOWS["refund"].input(request_), rt.config("F3", ALICE))
    assert out["status"] == status and "__interrupt__" not in out
    assert out["outcome"] == {"status": "rejected", "reason": status.removeprefix("rejected: ")}
    assert payments(request_["order_id"]) == [] and ticket("12345") == ("open", "")


def test_a_small_refund_needs_no_approval(db_url: str) -> None:
    from steward.examples.refund import outbox, ticket

    with steward.open(db_url, thread_roles=ROLES, policy=WORKFLOWS["refund"].policy()) as rt:
        out = _refund(rt).invoke(WORKFLOWS["refund"].input({"order_id": "12345",
                                                            "amount": "45.50"}),
                                 rt.config("F4", ALICE))
    assert out["status"] == "refunded" and out["approved_by"] == ""
    assert len(outbox("omar.reyes@example.com")) == 1 and ticket("12345")[0] == "closed"


def test_support_remembers_a_customer_across_threads_until_erased(db_url: str) -> None:
    ops = steward.Principal(id="olga", tenant="acme", roles=frozenset({"ops"}))
    with steward.open(db_url, thread_roles={**ROLES, "ops": "admin"},
                      policy=WORKFLOWS["refund"].policy()) as rt:
        graph = WORKFLOWS["refund"].build().compile(checkpointer=rt.checkpointer,
                                                    store=rt.store)
        first = graph.invoke({"order_id": "24680", "amount": "20.00",
                              "preference": "prefers refunds to the card, not store credit"},
                             rt.config("P1", ALICE))
        assert first["status"] == "refunded"
        assert "remembered: 0 past refund(s)" in first["events"][1]
        second = graph.invoke({"order_id": "24680", "amount": "15.00"},
                              rt.config("P2", ALICE))
        assert second["events"][1] == ("remembered: 1 past refund(s); prefers refunds to the "
                                       "card, not store credit")
        assert rt.checkpointer.thread_info("P1", ops)["subjects"] == ["jane.doe@example.com"]
        receipt = rt.erase("jane.doe@example.com", by=ops)
        assert receipt.memories == 3  # two cases and the preference
        assert receipt.threads == ("P1", "P2")  # the threads about her, owned by Alice
        for tid in receipt.threads:
            assert graph.get_state(rt.config(tid, ops)).values == {}
            assert "jane" not in str([e.payload for e in rt.audit.events(tid, ops)])
            assert rt.audit.verify(tid) > 0
        third = graph.invoke({"order_id": "24680", "amount": "5.00"}, rt.config("P3", ALICE))
        assert third["events"][1] == "remembered: 0 past refund(s)"
