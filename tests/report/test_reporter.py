"""``rt.report``: the scorecard of a real trail (tests/_trail.py: the example workflows with an
approval granted, one rejected, a self-approval and another tenant refused, a crash and an
error recovered, a model's tokens priced), exact, on SQLite and PostgreSQL; the tenant's
figures only; who may read it; what an empty or unknown scope says; broken guarantees found
with their thread and event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from _pg import PgServer
from _support import ALICE, CAROL, DAVE, EVE, execute, one_node
from _trail import SAM, THREADS, build_trail, runtime
from conftest import BACKENDS

import steward
from steward.report import Scorecard, render_text
from steward.report.fmt import stamp


@pytest.fixture(scope="module", params=BACKENDS)
def trail(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[str]:
    """The database of tests/_trail.py's trail, built once per backend."""
    workdir = tmp_path_factory.mktemp("trail")
    server: PgServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir}/steward.db"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create_database()
    build_trail(url, workdir)
    try:
        yield url
    finally:
        if server is not None:
            server.drop_database(url)


@pytest.fixture(scope="module")
def card(trail: str) -> Scorecard:
    with runtime(trail) as rt:
        return rt.report(CAROL, timelines=True)


def test_completion_counts_each_thread_by_how_it_stands(card: Scorecard) -> None:
    c = card.completion
    assert [t.thread_id for t in card.threads] == THREADS  # oldest first; no globex thread
    assert (c.threads, c.finished, c.waiting, c.failed, c.stalled, c.running, c.erased) == (
        9, 7, 1, 1, 0, 0, 0)
    assert (c.finished_unassisted, c.finished_after_approval) == (5, 2)
    assert c.outcomes == {"refunded": 4, "done": 2, "rejected": 1}
    assert c.waiting_on == {"security": 1} and c.failed_by == {"PolicyDenied": 1}
    assert c.rate == pytest.approx(7 / 9)
    by_id = {t.thread_id: t for t in card.threads}
    assert {t: (s.workflow, s.category, s.detail) for t, s in by_id.items()} == {
        "R-approved": ("refund", "finished", "refunded"),
        "R-rejected": ("refund", "failed", "PolicyDenied"),
        "R-small": ("refund", "finished", "refunded"),
        "R-unknown": ("refund", "finished", "rejected"),
        "R-crash": ("refund", "finished", "refunded"),
        "R-error": ("refund", "finished", "refunded"),
        "A-admin": ("access", "finished", "done"),
        "A-model": ("access", "finished", "done"),
        "A-waiting": ("access", "waiting", "security")}
    assert [by_id[t].steps for t in ("R-small", "R-unknown")] == [6, 1]


def test_recovery_finds_the_crash_and_the_error_and_where_each_went_on(card: Scorecard) -> None:
    r = card.recovery
    crash, error = sorted(r.interruptions, key=lambda i: i.cause)
    assert (crash.thread_id, crash.cause, crash.step, crash.node) == ("R-crash", "crash", 4,
                                                                      "issue_refund")
    assert (crash.resumed_step, crash.resumed_node, crash.recovered) == (4, "issue_refund", True)
    assert (error.thread_id, error.error, error.step, error.node) == (
        "R-error", "OperationalError", 1, "verify_order")
    assert (error.resumed_step, error.resumed_node, error.recovered) == (1, "verify_order", True)
    assert (r.interrupted, r.resumed, r.recovered, r.rate) == (2, 2, 2, 1.0)
    assert r.by_cause == {"crash": 1, "error": 1}
    assert (r.effect_replays, r.effect_retries) == (1, 0)  # the crash's refund, not repeated
    assert r.time_to_resume.count == 2 and (r.time_to_resume.max or 0) < 120


def test_governance_counts_decisions_approvals_and_refusals(card: Scorecard) -> None:
    g = card.governance
    # Guarded call sites: refunds 6 + 4 (rejected at issue_refund) + 6 + 1 (unknown order)
    # + 6 + 6; access 3 (lookup, grant, notify) + 2 (the model's plan) + 2 (still waiting).
    assert (g.guarded_calls, g.allowed, g.denied, g.sent_for_approval, g.standing_uses) == (
        36, 32, 0, 4, 0)
    assert g.approvals == {"approved": 2, "pending": 1, "rejected": 1}
    assert g.refused_votes == {"four_eyes": 1} and g.self_approvals_refused == 1
    assert [(x.principal_id, x.tenant, x.thread_id, x.need) for x in g.cross_tenant] == [
        ("eve", "globex", "R-approved", "write"), ("eve", "globex", "R-approved", "read")]
    assert g.prevented == 1 and g.shadow_disagreements == ()


def test_audit_completeness_holds_on_the_trail(card: Scorecard) -> None:
    a = card.audit
    # Effects: the three of each of four refunds; access's grant and notice, and one grant.
    assert (a.effects, a.effects_guarded, a.effects_needing_approval, a.effects_approved) == (
        15, 15, 2, 2)
    assert (a.chains, a.chains_verified) == (10, 10)  # nine threads and acme's access chain
    assert a.events_with_personal_data == 0 and a.findings == () and a.complete is True
    assert a.events == sum(t.events for t in card.threads) + 2  # + the two refusals
    assert card.broken() == ()


def test_efficiency_and_cost(card: Scorecard) -> None:
    e = card.efficiency
    assert {w.workflow: (w.threads, w.finished) for w in e.workflows} == {
        "access": (3, 2), "refund": (6, 5)}
    [access] = [w for w in e.workflows if w.workflow == "access"]
    assert (access.input_tokens, access.output_tokens, access.unpriced_calls) == (10, 5, 0)
    assert access.cost == pytest.approx(10 / 1000 * 0.15 + 5 / 1000 * 0.6)
    assert access.cost_per_thread == pytest.approx(access.cost / 3)
    assert e.cost == pytest.approx(access.cost) and (e.input_tokens, e.output_tokens) == (10, 5)
    assert e.time_to_resolution.count == 7
    assert {role: d.count for role, d in e.approval_wait.items()} == {"manager": 2,
                                                                       "security": 1}
    [still] = e.open_requests
    assert (still.thread_id, still.action, still.roles, still.votes, still.quorum) == (
        "A-waiting", "grant_access", ("security",), 0, 1)
    assert {m.name: (m.calls, m.errors) for m in e.models} == {"gpt-4o-mini": (1, 0)}
    effects = {x.name: (x.calls, x.errors) for x in e.effects}
    assert effects["demo.pay_refund"] == (4, 0) and effects["demo.send_receipt"] == (4, 0)
    assert {x.name for x in e.tools} >= {"lookup_user", "grant_access"}
    [model] = [t for t in card.threads if t.thread_id == "A-model"]
    assert (model.model_calls, model.input_tokens, model.cost) == (1, 10, access.cost)


def test_a_timeline_tells_who_did_what_with_the_votes(card: Scorecard) -> None:
    told = card.timelines["R-approved"]
    lines = [(x.who, x.text) for x in told.entries]
    assert ("alice", "run started (refund)") == lines[0]
    assert any(who == "alice" and "vote refused (four_eyes)" in text for who, text in lines)
    assert ("eve", "refused eve of tenant globex: write") in lines
    assert any(who == "bob" and text.startswith("voted approve as manager") for who, text in lines)
    assert lines[-1] == ("bob", lines[-1][1]) and lines[-1][1].startswith("run ended: refunded")
    [approval] = told.approvals
    [vote] = approval.votes
    assert (approval.status, approval.requested_by, vote.voter, vote.role, vote.decision) == (
        "approved", "alice", "bob", "manager", "approve")
    assert vote.comment is not None and "<script>" in vote.comment  # stored as written
    assert set(card.timelines) == set(THREADS)


def test_the_scope_narrows_to_a_workflow_a_thread_and_a_period(trail: str,
                                                               card: Scorecard) -> None:
    with runtime(trail) as rt:
        refunds = rt.report(CAROL, workflow="refund")
        assert [t.thread_id for t in refunds.threads] == THREADS[:6]
        assert refunds.audit.chains == 6  # no tenant chain under a named workflow
        one = rt.report(CAROL, thread="R-crash")
        assert [i.thread_id for i in one.recovery.interruptions] == ["R-crash"]
        later = rt.report(CAROL, since=card.threads[6].created_at)
        assert [t.thread_id for t in later.threads] == THREADS[6:]
        earlier = rt.report(CAROL, until=card.threads[6].created_at)
        assert len(earlier.threads) == 6
        assert rt.report(CAROL, since="1h").completion.threads == 9  # a duration back from now
        assert not rt.report(CAROL, until="1h").threads
        assert card.timelines and refunds.timelines == {}  # only when asked
        asked = rt.report(CAROL, workflow="refund", timelines=True)
        assert set(asked.timelines) == set(THREADS[:6])


def test_another_tenant_sees_only_its_own(trail: str) -> None:
    with runtime(trail) as rt:
        theirs = rt.report(EVE)  # globex: its admin role reads its tenant's threads
    assert [t.thread_id for t in theirs.threads] == ["G-1"]
    assert theirs.completion.outcomes == {"refunded": 1}
    assert theirs.governance.cross_tenant == () and theirs.governance.refused_votes == {}
    assert theirs.audit.complete is True and theirs.audit.chains == 1  # no access chain


async def test_the_async_twin_reports_the_same(trail: str, card: Scorecard) -> None:
    async with steward.aopen(trail, thread_roles={"auditor": "read"}) as rt:
        twin = await rt.areport(CAROL, timelines=True)

    def comparable(sc: Scorecard) -> dict[str, Any]:
        out = sc.to_dict()
        out["scope"].pop("generated_at")
        for request in out["efficiency"]["open_requests"]:
            request.pop("age")
        return out

    assert comparable(twin) == comparable(card)


@pytest.mark.parametrize("who", [ALICE, DAVE, SAM])
def test_a_report_needs_a_tenant_wide_read(trail: str, who: steward.Principal) -> None:
    refused = "may not read every thread of tenant 'acme', which a report does"
    with runtime(trail) as rt, pytest.raises(steward.ThreadAccessDenied, match=refused):
        rt.report(who)


def test_an_unknown_workflow_or_thread_is_named(trail: str) -> None:
    with runtime(trail) as rt:
        with pytest.raises(steward.ConfigError, match=r"no workflow 'refnd' .*access, refund"):
            rt.report(CAROL, workflow="refnd")
        with pytest.raises(steward.ConfigError, match="no thread 'G-1' in tenant 'acme'"):
            rt.report(CAROL, thread="G-1")  # globex's: not named to acme
        with pytest.raises(steward.ConfigError, match="neither a time nor a duration"):
            rt.report(CAROL, since="last week")
        with pytest.raises(steward.ConfigError, match="since must be before until"):
            rt.report(CAROL, since="1h", until="2h")


@pytest.mark.parametrize(("asked", "says", "cli"), [
    ({"workflow": 5}, "workflow must be a workflow name (a non-empty string) or None for every "
     "workflow, got 5", "--workflow must name a workflow, got 5"),
    ({"workflow": ""}, "workflow must be a workflow name", "give a non-empty --workflow"),
    ({"thread": ["R-1"]}, "thread must be a thread name (a non-empty string) or None for every "
     "thread, got ['R-1']", "--thread must name a thread"),
    ({"since": True}, "since is a time, not True: give a datetime, epoch seconds", None),
    ({"since": -1}, "since must be a time after 1970 (epoch seconds), got -1", None),
    ({"until": float("nan")}, "until must be a time after 1970 (epoch seconds), got nan", None),
    ({"since": "last week"}, "since 'last week' is neither a time nor a duration: give a "
     "datetime, epoch seconds, an ISO 8601 date", "--since 'last week' is neither a time nor a "
     "duration: write an ISO 8601 date"),
    ({"since": "1h", "until": "2h"}, "since must be before until (got since='1h', until='2h')",
     "--since 1h is not before --until 2h: the period would hold no thread"),
    ({"since": "1d", "until": "1d"}, "since must be before until", "--since 1d is not before"),
])
def test_bad_names_and_periods_are_refused_saying_what_to_do(
        trail: str, asked: dict[str, Any], says: str, cli: str | None) -> None:
    with runtime(trail) as rt, pytest.raises(steward.ConfigError) as refused:
        rt.report(CAROL, **asked)
    assert says in str(refused.value), refused.value
    assert "config['configurable']" not in str(refused.value)  # not the checkpointer's advice
    if cli is not None:
        assert refused.value.cli is not None and cli in refused.value.cli, refused.value.cli


def test_an_empty_trail_reports_zeros_and_verifies_nothing(db_url: str) -> None:
    with steward.open(db_url, thread_roles={"auditor": "read"}) as rt:
        card = rt.report(CAROL)
    assert card.empty and card.completion.threads == 0 and card.completion.rate is None
    assert card.audit.complete is None and card.audit.chains == 0
    assert card.recovery.rate is None and card.efficiency.time_to_resolution.median is None


def _unguarded(state: dict[str, Any]) -> dict[str, Any]:
    return {"sent": _send("jane.doe@example.com")}


@steward.effect
def _send(to: str, *, idempotency_key: str) -> str:
    return f"sent to {to}"


def test_broken_guarantees_are_found_with_their_thread_and_event(db_url: str) -> None:
    with steward.open(db_url, thread_roles={"auditor": "read"}) as rt:
        graph = one_node(dict, _unguarded).compile(checkpointer=rt.checkpointer)
        graph.invoke({}, rt.config("U1", ALICE))
        graph.invoke({}, rt.config("U2", ALICE))
        rt.audit.record("U1", "note", {"to": "jane.doe@example.com"}, principal=ALICE,
                        redact=False)  # written around the redactor
        rt.audit.flush("U1")
        execute(db_url, "UPDATE steward_audit SET kind = 'edited' WHERE thread_id = 'U2' AND "
                "seq = 4")
        card = rt.report(CAROL, timelines=True)
    found = [(f.check, f.thread_id, f.seq) for f in card.broken()]
    [leak] = [x.seq for x in card.timelines["U1"].entries if x.kind == "note"]
    assert found == [("unguarded_effect", "U1", 3), ("personal_data", "U1", leak),
                     ("unguarded_effect", "U2", 3), ("chain", "U2", 4)]
    assert card.audit.complete is False and card.audit.events_with_personal_data == 1
    details = " ".join(f.detail for f in card.broken())
    assert "(to: email)" in details and "jane" not in details  # named, never shown


def test_percentiles_are_nearest_rank() -> None:
    from steward.report import Dist

    d = Dist.of([5.0, 1.0, 3.0, 2.0, 4.0, None])
    assert (d.count, d.median, d.p90, d.max, d.mean) == (5, 3.0, 5.0, 5.0, 3.0)
    assert Dist.of(float(n) for n in range(1, 11)).p90 == 9.0
    assert Dist.of([]).median is None


def test_reading_a_report_writes_nothing(trail: str) -> None:
    from _support import snapshot

    before = snapshot(trail)
    with runtime(trail) as rt:
        rt.report(CAROL, timelines=True)
    assert snapshot(trail) == before  # every row of every table


FLAKY: dict[str, int] = {}


class Flaky(TypedDict, total=False):
    key: str
    outcome: dict[str, Any]


def _check(state: dict[str, Any]) -> dict[str, Any]:
    steward.guard("lookup", {"n": 1})  # allowed; a shadow policy would forbid it
    return {}


def _flaky(state: dict[str, Any]) -> dict[str, Any]:
    FLAKY[state["key"]] = FLAKY.get(state["key"], 0) + 1
    if FLAKY[state["key"]] == 1:
        raise ValueError("the directory timed out")
    return {"outcome": {"status": "done"}}


def test_retries_stalled_runs_and_shadow_policies_are_counted(db_url: str,
                                                               tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from langgraph.graph import START, StateGraph
    from langgraph.types import RetryPolicy

    enforced = steward.Policy.from_cedar("permit (principal, action, resource);")
    shadow = steward.Policy.from_cedar('forbid (principal, action == Action::"lookup", '
                                       "resource);", enforce=False)
    builder = StateGraph(Flaky)
    builder.add_node("check", _check)
    builder.add_node("flaky", _flaky, retry_policy=RetryPolicy(max_attempts=2,
                                                               retry_on=ValueError))
    builder.add_edge(START, "check")
    builder.add_edge("check", "flaky")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "STEWARD_DEMO_CRASH": "after-refund"}
    killed = subprocess.run(
        [sys.executable, "-m", "steward.cli", "run", "refund", "--as", "acme/alice:support",
         "--thread", "K-1", "--input", '{"order_id": "24680", "amount": "60.00"}', "--db",
         db_url], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    with steward.open(db_url, thread_roles={"auditor": "read"},
                      policy=[enforced, shadow]) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer, name="flaky")
        assert graph.invoke({"key": db_url}, rt.config("F-1", ALICE))["outcome"]
        card = rt.report(CAROL)
    by_id = {t.thread_id: t.category for t in card.threads}
    assert by_id == {"K-1": "stalled", "F-1": "finished"} and card.completion.stalled == 1
    [crash, retry] = sorted(card.recovery.interruptions, key=lambda i: i.cause)
    assert (crash.thread_id, crash.cause, crash.node, crash.resumed_at, crash.recovered) == (
        "K-1", "crash", "issue_refund", None, False)
    assert (retry.thread_id, retry.cause, retry.error, retry.node, retry.resumed_node,
            retry.recovered) == ("F-1", "retry", "ValueError", "flaky", "flaky", True)
    assert (card.recovery.resumed, card.recovery.recovered) == (1, 1)
    [disagreement] = card.governance.shadow_disagreements
    assert (disagreement.thread_id, disagreement.action, disagreement.enforced,
            disagreement.shadow) == ("F-1", "lookup", "allow", ("deny",))
    shown = _printed(card)  # the terminal shows them too, with their times
    assert "Shadow-policy disagreements" in shown and "Interrupted runs" in shown
    assert stamp(crash.at) in shown and stamp(retry.at) in shown, shown


def _printed(card: Scorecard) -> str:
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    render_text(card, Console(file=out, width=1000, markup=False, highlight=False))
    return out.getvalue()
