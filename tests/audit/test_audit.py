"""The audit trail: events of every transition, a tamper-evident chain per thread, export and
offline verification, streaming and OpenTelemetry spans (issue #6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest
from _support import ALICE, BOB, CAROL, EVE, SUPPORT, execute, one_node
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.types import Command, interrupt
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import steward
from steward import AuditTampered, ThreadAccessDenied
from steward.audit.export import verify_file

ROLES = {"manager": "write", "auditor": "read"}
POLICY = ('permit (principal, action, resource);\n@approval("manager") forbid (principal, '
          'action == Action::"pay", resource);')
SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _tracing() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


class S(TypedDict, total=False):
    email: str
    paid: Any
    note: Any


@steward.effect
def pay_out(email: str, *, idempotency_key: str) -> str:
    return f"paid {email}"


def _pay(state: S) -> dict[str, Any]:
    steward.guard("pay", {"email": state["email"]})
    paid = pay_out(state["email"])
    return {"paid": paid, "note": interrupt({"type": "confirm"})}


def _graph(rt: steward.Runtime) -> Any:
    return one_node(S, _pay).compile(checkpointer=rt.checkpointer)


def _open(url: str, **options: Any) -> steward.Runtime:
    return steward.open(url, thread_roles=ROLES, policy=steward.Policy.from_cedar(POLICY),
                        **options)


def _paused_and_done(rt: steward.Runtime, tid: str = "T") -> Any:
    graph = _graph(rt)
    graph.invoke({"email": "jane.doe@example.com"}, rt.config(tid, ALICE))
    graph.invoke(Command(resume={"decision": "approve", "comment": "ok"}), rt.config(tid, BOB))
    return graph.invoke(Command(resume="thanks"), rt.config(tid, ALICE))


def test_every_transition_is_an_event_in_one_verified_chain(db_url: str) -> None:
    with _open(db_url) as rt:
        out = _paused_and_done(rt)
        assert out["note"] == "thanks"
        events = rt.audit.events("T", ALICE)
        kinds = [e.kind for e in events]
        assert kinds[:6] == ["run_start", "node_start", "guard", "approval_request",
                             "interrupt", "run_paused"]
        assert kinds.count("resume") == 2 and kinds[-1] == "run_end"
        for kind in ("approval_vote", "approval_outcome", "effect_call", "effect_replay",
                     "node_end"):
            assert kind in kinds, kind
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert rt.audit.verify("T") == len(events)
        resume = next(e for e in events if e.kind == "resume")
        assert resume.principal_id == "bob" and resume.payload["resume"]["decision"] == "approve"
        vote = next(e for e in events if e.kind == "approval_vote")
        assert vote.principal_id == "bob" and vote.payload["voter"] == "bob"
        node_end = next(e for e in events if e.kind == "node_end")
        assert node_end.node == "n" and node_end.step == 1 and node_end.duration is not None
        assert node_end.checkpoint_id is not None  # tied to the checkpoint it belongs to
        assert all(e.tenant == "acme" and e.run_id for e in events)
        guard = next(e for e in events if e.kind == "guard")
        assert guard.payload["decision"]["effect"] == "approval"
        # Payloads pass through the redactor before they are stored.
        stored = execute(db_url, "SELECT payload FROM steward_audit")
        assert "jane.doe@example.com" not in json.dumps([str(r[0]) for r in stored])
        assert guard.payload["args"]["email"] == "[REDACTED:email]"


@pytest.mark.parametrize("order", ["audit-first", "lease-first"])
def test_a_runs_last_events_are_written_whatever_the_callback_order(db_url: str,
                                                                    order: str) -> None:
    def ordered(config: Any) -> Any:
        callbacks = config["callbacks"]
        return {**config, "callbacks": callbacks if order == "audit-first" else callbacks[::-1]}

    with _open(db_url) as rt:
        graph = _graph(rt)
        graph.invoke({"email": "a@b.example"}, ordered(rt.config("O1", ALICE)))
        graph.invoke(Command(resume={"decision": "approve"}), ordered(rt.config("O1", BOB)))
        graph.invoke(Command(resume="done"), ordered(rt.config("O1", ALICE)))
        assert not rt.audit.pending("O1")  # nothing is left waiting for a next write
        kinds = [e.kind for e in rt.audit.events("O1", ALICE)]
        assert kinds[-1] == "run_end" and kinds.count("run_paused") == 2
        assert rt.audit.verify("O1") == len(kinds)


def test_events_follow_the_thread_access_rule_and_filter(db_url: str) -> None:
    with _open(db_url) as rt:
        _paused_and_done(rt)
        with pytest.raises(steward.ThreadAccessDenied):
            rt.audit.events("T", EVE)
        votes = rt.audit.events("T", BOB, kinds=["approval_vote"])
        assert len(votes) == 1
        everything = rt.audit.events("T", ALICE)
        later = rt.audit.events("T", ALICE, since=votes[0].at)
        assert later and all(e.at >= votes[0].at for e in later) and len(later) < len(everything)
        assert [e.seq for e in rt.audit.events("T", ALICE, after=3, limit=2)] == [4, 5]


TAMPER = {
    "edit": "UPDATE steward_audit SET payload = '{\"kind\": \"forged\"}' WHERE seq = 3",
    "delete": "DELETE FROM steward_audit WHERE seq = 4",
    "insert": "INSERT INTO steward_audit SELECT thread_id, 100, kind, at, tenant, principal_id, "
              "run_id, node, step, checkpoint_ns, checkpoint_id, duration, payload, prev_hash, "
              "hash, payload_hash FROM steward_audit WHERE seq = 2",
    "swap": "",
    "tail": "DELETE FROM steward_audit WHERE seq = (SELECT max(seq) FROM steward_audit)",
    "other-field": "UPDATE steward_audit SET principal_id = 'mallory' WHERE seq = 5",
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_tampering_is_detected_and_a_tampered_thread_does_not_resume(db_url: str,
                                                                     how: str) -> None:
    with _open(db_url) as rt:
        graph = _graph(rt)
        graph.invoke({"email": "a@b.example"}, rt.config("T", ALICE))  # paused on approval
        assert rt.audit.verify("T") >= 6
        if how == "swap":  # in two steps: the key (thread, seq) is unique at every instant
            execute(db_url, "UPDATE steward_audit SET seq = -seq WHERE seq IN (2, 3)")
            execute(db_url, "UPDATE steward_audit SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END "
                            "WHERE seq IN (-2, -3)")
        else:
            execute(db_url, TAMPER[how])
        with pytest.raises(AuditTampered, match="audit chain of thread 'T'"):
            rt.audit.verify("T")
        with pytest.raises(AuditTampered):
            graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert graph.get_state(rt.config("T", ALICE)).next == ("n",)  # still waiting
    with _open(db_url, verify_on_resume=False) as rt:  # the operator's choice
        out = _graph(rt).invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert out["__interrupt__"][0].value == {"type": "confirm"}


def test_verify_all_checks_a_tenants_threads(db_url: str) -> None:
    with _open(db_url) as rt:
        for tid in ("A", "B"):
            _graph(rt).invoke({"email": "x@y.example"}, rt.config(tid, ALICE))
        counts = rt.audit.verify_all(CAROL)  # an auditor: a tenant-wide read
        assert set(counts) == {"A", "B"} and all(n > 0 for n in counts.values())
        assert rt.audit.verify_all(EVE) == {}
        # It names every thread of the tenant: a member without a tenant-wide read is refused.
        with pytest.raises(ThreadAccessDenied, match="which verifying every chain does"):
            rt.audit.verify_all(ALICE)
        execute(db_url, "DELETE FROM steward_audit WHERE thread_id = 'B' AND seq = 2")
        with pytest.raises(AuditTampered, match="'B'"):
            rt.audit.verify_all(CAROL)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "steward.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_an_export_verifies_offline_and_edits_to_it_are_caught(db_url: str,
                                                               tmp_path: Path) -> None:
    file = tmp_path / "audit.jsonl"
    with _open(db_url) as rt:
        _paused_and_done(rt, "T1")
        _graph(rt).invoke({"email": "x@y.example"}, rt.config("T2", ALICE))
        written = rt.audit.export(file, ALICE)
        with pytest.raises(steward.ThreadAccessDenied):
            rt.audit.export(tmp_path / "no.jsonl", EVE, thread_id="T1")
        with pytest.raises(steward.ConfigError, match="no audit events to export for thread"):
            rt.audit.export(tmp_path / "none.jsonl", ALICE, thread_id="T-none")
    # a refused export writes nothing, not even an empty file or a temporary one
    assert [p.name for p in tmp_path.glob("*jsonl*")] == ["audit.jsonl"]
    counts = verify_file(file)
    assert set(counts) == {"T1", "T2"} and sum(counts.values()) == written
    done = _cli("audit", "verify", "--file", str(file))
    assert done.returncode == 0 and f"verified {written} events in 2 threads" in done.stdout
    lines = file.read_text().splitlines()
    for broken in (
        [line.replace('"kind": "guard"', '"kind": "guarded"') for line in lines],  # edit
        [line for i, line in enumerate(lines) if i != 3],  # delete
        lines[:-1],  # the last head cut off
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(broken) + "\n")
        with pytest.raises(AuditTampered):
            verify_file(bad)
        done = _cli("audit", "verify", "--file", str(bad))
        assert done.returncode == 1 and done.stderr.startswith("error: ")


def test_subscribers_get_events_as_they_are_written(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = _graph(rt)
        graph.invoke({"email": "x@y.example"}, rt.config("T", ALICE))
        stop, seen = threading.Event(), []

        def listen() -> None:
            for event in rt.audit.subscribe("T", ALICE, after=0, poll=0.05, stop=stop):
                seen.append(event.kind)
                if event.kind == "run_end":
                    stop.set()

        listener = threading.Thread(target=listen)
        listener.start()
        graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        graph.invoke(Command(resume="ok"), rt.config("T", ALICE))
        listener.join(timeout=10)
        assert not listener.is_alive() and seen[0] == "run_start" and seen[-1] == "run_end"
        assert seen == [e.kind for e in rt.audit.events("T", ALICE)]


async def test_async_subscribers(db_url: str) -> None:
    import asyncio

    async with steward.aopen(db_url, thread_roles=ROLES,
                             policy=steward.Policy.from_cedar(POLICY)) as rt:
        graph = _graph(rt)
        await graph.ainvoke({"email": "x@y.example"}, rt.config("T", ALICE))
        stop = asyncio.Event()
        kinds = []
        async for event in rt.audit.asubscribe("T", ALICE, poll=0.05, stop=stop):
            kinds.append(event.kind)
            if event.kind == "run_paused":
                stop.set()
        assert kinds[0] == "run_start" and kinds[-1] == "run_paused"
        assert await rt.audit.averify("T") == len(kinds)


def test_model_and_tool_calls_are_events_and_spans(db_url: str) -> None:
    SPANS.clear()
    usage = {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500}
    model = FakeMessagesListChatModel(responses=[AIMessage("plan ready", usage_metadata=usage,
                                                           response_metadata={
                                                               "model_name": "fake-gpt"})])

    @tool
    def lookup(order_id: str) -> str:
        """Look an order up."""
        return f"order {order_id}"

    def node(state: S) -> dict[str, Any]:
        answer = model.invoke([HumanMessage("plan")])
        return {"note": [answer.content, lookup.invoke({"order_id": "7"})]}

    with _open(db_url, prices={"fake-gpt": (0.01, 0.02)}) as rt:
        one_node(S, node).compile(checkpointer=rt.checkpointer).invoke(
            {}, rt.config("T", ALICE))
        events = {e.kind: e for e in rt.audit.events("T", ALICE)}
    call = events["model_call"].payload
    assert (call["model"], call["input_tokens"], call["output_tokens"]) == ("fake-gpt", 1200,
                                                                             300)
    assert call["cost"] == pytest.approx(1.2 * 0.01 + 0.3 * 0.02)
    assert events["tool_call"].payload["tool"] == "lookup"
    assert events["tool_result"].payload["result"] == "order 7"
    assert events["model_call"].node == "n"
    spans = {s.name: s for s in SPANS.get_finished_spans()}
    assert {"invoke_agent LangGraph", "node n", "execute_tool lookup"} <= set(spans)
    chat = next(s for name, s in spans.items() if name.startswith("chat "))
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 1200
    assert chat.attributes["steward.thread_id"] == "T"
    assert chat.attributes["steward.principal.id"] == "alice"
    node_span = spans["node n"]
    assert chat.parent is not None and chat.parent.span_id == node_span.context.span_id
    assert spans["execute_tool lookup"].attributes["gen_ai.tool.name"] == "lookup"


def test_two_workers_on_distinct_threads_keep_their_chains(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\nsys.path[:0] = sys.argv[3].split('" + os.pathsep + "')\n"
        "import steward\nfrom test_audit import _graph, _open, ALICE\n"
        "with _open(sys.argv[1]) as rt:\n"
        "    for i in range(4):\n"
        "        _graph(rt).invoke({'email': 'w@x.example'}, rt.config(f'{sys.argv[2]}-{i}', "
        "ALICE))\n")
    with _open(db_url):
        pass
    path = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    procs = [subprocess.Popen([sys.executable, str(script), db_url, name, path],
                              stderr=subprocess.PIPE) for name in ("w1", "w2")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    with _open(db_url) as rt:
        counts = rt.audit.verify_all(CAROL)
    assert len(counts) == 8 and len(set(counts.values())) == 1


class N(TypedDict, total=False):
    n: int


def test_writers_racing_on_one_chain_do_not_fork_it(db_url: str) -> None:
    """A process whose idea of a chain's head is stale (another runtime wrote events since)
    chains its next events after the real head: through its own flush, and (PostgreSQL)
    through a checkpoint write sent as one statement, which fails on the taken event keys and
    is made again the careful way."""
    from steward.audit.handler import AuditCallbackHandler

    def by(rt: steward.Runtime) -> list[Any]:
        return [e.payload.get("by") for e in rt.audit.events("U", ALICE) if e.kind == "note"]

    with _open(db_url) as a, _open(db_url) as b:
        graph = one_node(N, lambda s: {"n": s.get("n", 0) + 1}).compile(
            checkpointer=a.checkpointer)
        graph.invoke({"n": 0}, a.config("U", ALICE))  # a run: A knows the head
        for turn in range(2):
            b.audit.record("U", "note", {"by": f"b{turn}"}, principal=BOB)
            b.audit.flush("U")  # behind A's back
            a.audit.record("U", "note", {"by": f"a{turn}"}, principal=ALICE)
            handler = AuditCallbackHandler(a.audit, "U", ALICE)
            out = graph.invoke({"n": 10 * turn}, {"configurable": {"thread_id": "U",
                                                                   "principal": ALICE},
                                                  "callbacks": [handler]})
            assert out == {"n": 10 * turn + 1}
        b.audit.record("U", "note", {"by": "b2"}, principal=BOB)
        b.audit.flush("U")
        a.audit.record("U", "note", {"by": "a2"}, principal=ALICE)
        a.audit.flush("U")
        assert by(a) == ["b0", "a0", "b1", "a1", "b2", "a2"]
        assert [e.kind for e in a.audit.events("U", ALICE, kinds=["node_end"])] == ["node_end"] * 3
        seqs = [e.seq for e in a.audit.events("U", ALICE)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert a.audit.verify("U") == b.audit.verify("U") == len(seqs)


def test_a_node_that_finished_before_a_kill_keeps_its_events(db_url: str,
                                                             tmp_path: Path) -> None:
    from _effect_worker import build

    world, marks = tmp_path / "world", tmp_path / "marks"
    worker = SUPPORT / "_effect_worker.py"
    with steward.open(db_url):
        pass
    proc = subprocess.Popen([sys.executable, str(worker), db_url, "K", str(world), str(marks)],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (marks.exists() and "later" in marks.read_text().split()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    with steward.open(db_url) as rt:
        build(rt.checkpointer, str(world), str(marks))
        events = rt.audit.events("K", {"id": "alice", "tenant": "acme", "roles": []})
        rt.audit.verify("K")
    ended = [e.node for e in events if e.kind == "node_end"]
    assert ended == ["refund"]  # the node that finished; the killed one did not
    assert "effect_call" in [e.kind for e in events]


def test_a_run_refused_before_it_starts_leaves_no_event(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = _graph(rt)
        graph.invoke({"email": "x@y.example"}, rt.config("T", ALICE))
        before = [e.kind for e in rt.audit.events("T", ALICE)]
        rt.checkpointer.acquire_lease("T", "someone-else", ALICE)  # another run holds it
        with pytest.raises(steward.ThreadBusy):
            graph.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        rt.checkpointer.release_lease("T", "someone-else")
        assert [e.kind for e in rt.audit.events("T", ALICE)] == before
        rt.audit.verify("T")


def test_ids_steward_mints_are_not_taken_for_personal_data(db_url: str) -> None:
    """A request id is "apr_" and 24 hex digits: now and then they read as an IBAN that passes
    mod 97 (a flaky test caught "apr_[REDACTED:iban]"). Ids Steward mints stay as they are;
    the rest of the payload is redacted as before."""
    from steward.guardrails.redact import Redactor

    redactor = Redactor()
    lookalike = next(rid for n in range(1_000_000)
                     if (rid := f"apr_ad{n:02d}{n:020x}"[:28]) and len(rid) == 28
                     and "[REDACTED" in redactor.redact_text(rid))
    with steward.open(db_url) as rt:
        graph = one_node(dict, lambda s: {})  # a thread to record on
        rt.audit.record("T", "approval_invalid", {
            "request_id": lookalike, "reason": "pay DE89 3704 0044 0532 0130 00 now"},
            principal=ALICE)
        graph.compile(checkpointer=rt.checkpointer).invoke({}, rt.config("T", ALICE))
        [event] = rt.audit.events("T", ALICE, kinds=["approval_invalid"])
    assert event.payload["request_id"] == lookalike
    assert "DE89" not in event.payload["reason"] and "[REDACTED:iban]" in event.payload["reason"]


def test_a_runs_start_names_its_workflow_and_its_end_the_outcome(db_url: str) -> None:
    """What reports read (steward.report): the workflow a run belongs to (``steward run``'s
    metadata, the server's ``graph_id``, else the graph's own name) and the outcome its final
    state records; a refused vote names the rule it broke; a broken chain the event."""

    def done(state: dict[str, Any]) -> dict[str, Any]:
        return {"outcome": {"status": "refunded", "reason": "for jane.doe@example.com"}}

    with _open(db_url) as rt:
        named = one_node(dict, done).compile(checkpointer=rt.checkpointer, name="refund")
        named.invoke({}, rt.config("W1", ALICE))
        config = rt.config("W2", ALICE)
        config["metadata"] = {"workflow": "close"}
        named.invoke({}, config)
        one_node(dict, lambda s: {}).compile(checkpointer=rt.checkpointer).invoke(
            {}, rt.config("W3", ALICE, graph_id="access"))
        one_node(dict, lambda s: {}).compile(checkpointer=rt.checkpointer).invoke(
            {}, rt.config("W4", ALICE))
        starts = {t: rt.audit.events(t, ALICE, kinds=["run_start"])[0].payload.get("workflow")
                  for t in ("W1", "W2", "W3", "W4")}
        assert starts == {"W1": "refund", "W2": "close", "W3": "access", "W4": None}
        [end] = rt.audit.events("W1", ALICE, kinds=["run_end"])
        assert end.payload["outcome"] == {"status": "refunded",
                                          "reason": "for [REDACTED:email]"}
        _graph(rt).invoke({"email": "x@y.example"}, rt.config("W5", ALICE))
        with pytest.raises(steward.ApprovalInvalid) as refused:
            _graph(rt).invoke(Command(resume={"decision": "approve"}), rt.config("W5", ALICE))
        assert refused.value.rule == "four_eyes"
        [invalid] = rt.audit.events("W5", ALICE, kinds=["approval_invalid"])
        assert invalid.payload["rule"] == "four_eyes"
        execute(db_url, "UPDATE steward_audit SET kind = 'edited' WHERE thread_id = ? AND "
                "seq = 2", ("W1",))
        with pytest.raises(AuditTampered) as broken:
            rt.audit.verify("W1")
        assert (broken.value.thread_id, broken.value.seq) == ("W1", 2)
