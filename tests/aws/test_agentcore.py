"""The AgentCore Runtime entrypoint (``steward.aws.agentcore``), started as AgentCore runs it
(its own process, uvicorn, the SDK's app) and called over HTTP with the headers AgentCore
sends: the session id names the thread, the forwarded bearer token the principal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _langgraph_server import SECRET, free_port, token
from _support import ROOT

import steward
from steward.examples import WORKFLOWS
from steward.examples.refund import payments
from steward.server.runtime import options_from_env

SESSION = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
ALICE = token("alice", "acme", ["support"])
BOB = token("bob", "acme", ["manager"])
EVE = token("eve", "globex", ["manager"])
INPUT = {"order_id": "98765", "amount": "120.00"}


class App:
    def __init__(self, base: str, db: str, proc: subprocess.Popen[bytes]) -> None:
        self.base, self.db, self.proc = base, db, proc

    def invoke(self, session: str | None, payload: Any, bearer: str | None = None, *,
               stream: bool = False, **headers: str) -> httpx.Response:
        sent = {"Content-Type": "application/json",
                "X-Amzn-Bedrock-AgentCore-Runtime-Request-Id": "req-1", **headers}
        if session is not None:
            sent[SESSION] = session
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        if stream:
            sent["Accept"] = "text/event-stream"
        return httpx.post(f"{self.base}/invocations", content=json.dumps(payload),
                          headers=sent, timeout=30)

    def ping(self) -> str:
        return str(httpx.get(f"{self.base}/ping", timeout=5).json()["status"])


def _serve(db: str, graph: str | None, env: dict[str, str]) -> Iterator[App]:
    """The app in a process of its own: tests/_agentcore_app.py serving ``graph``, or (None)
    the container's command, ``python -m steward.aws.agentcore``, configured by ``env``."""
    port = free_port()
    command = [sys.executable, str(ROOT / "tests" / "_agentcore_app.py"), str(port), graph] \
        if graph is not None else [sys.executable, "-m", "steward.aws.agentcore"]
    proc = subprocess.Popen(
        command, env={**os.environ, "STEWARD_DB": db, "STEWARD_JWT_SECRET": SECRET,
                      "PORT": str(port), "HOST": "127.0.0.1", **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the AgentCore app did not start: {proc.stderr.read()!r}"
                                   if proc.stderr else "the AgentCore app did not start")
            time.sleep(0.1)
        yield App(base, db, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    yield from _serve(db_url, "refund", {})


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: "):]) for line in response.text.splitlines()
            if line.startswith("data: ")]


def _thread(db: str, session: str) -> tuple[int, int, str]:
    """What a rejected request must leave unchanged: checkpoints, audit events, status."""
    with steward.open(db, **options_from_env()) as rt:
        auditor = steward.Principal(id="carol", tenant="acme", roles={"auditor"})
        config = rt.config(session, auditor)
        graph = WORKFLOWS["refund"].build().compile(checkpointer=rt.checkpointer)
        checkpoints = len(list(graph.get_state_history(config)))
        info = rt.checkpointer.thread_info(session, auditor)
        events = len(rt.audit.events(session, auditor, limit=None)) if info else 0
        return checkpoints, events, info["status"] if info else "none"


def test_a_refund_waits_for_the_manager_and_runs_once(app: App) -> None:
    out = app.invoke("sess-refund-0001", INPUT, ALICE)
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["session_id"] == "sess-refund-0001" and body["status"] == "interrupted"
    [request] = body["interrupts"]
    assert request["value"]["args"] == INPUT
    assert payments("98765") == []

    out = app.invoke("sess-refund-0001", {"resume": {"decision": "approve"}}, BOB, stream=True)
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/event-stream")
    events = _events(out)
    assert [e.get("event") for e in events][-1] == "end", events
    assert {"issue_refund", "email_receipt", "update_ticket"} <= {
        node for e in events if e["event"] == "updates" for node in e["data"]}
    end = events[-1]["data"]
    assert end["status"] == "done" and end["values"]["status"] == "refunded"
    assert [txn for txn, _, _ in payments("98765")] == [end["values"]["receipt"]]
    # The audit trail names who did what: alice asked, bob approved.
    with steward.open(app.db, **options_from_env()) as rt:
        auditor = steward.Principal(id="carol", tenant="acme", roles={"auditor"})
        events_ = rt.audit.events("sess-refund-0001", auditor, limit=None)
        assert {e.principal_id for e in events_ if e.kind == "run_start"} == {"alice"}
        assert {e.principal_id for e in events_ if e.kind == "resume"} == {"bob"}
        assert rt.audit.verify("sess-refund-0001") == len(events_)


def test_the_stream_carries_the_approval_request(app: App) -> None:
    out = app.invoke("sess-stream-0001", INPUT, ALICE, stream=True)
    events = _events(out)
    [interrupt] = [e for e in events if e["event"] == "interrupt"]
    assert interrupt["data"][0]["value"]["args"] == INPUT
    assert events[-1] == {"event": "end", "data": {**events[-1]["data"],
                                                   "status": "interrupted"}}


@pytest.mark.parametrize(("bearer", "session", "payload", "status", "error"), [
    (None, "sess-x", INPUT, 401, "TokenInvalid"),
    ("not-a-jwt", "sess-x", INPUT, 401, "TokenInvalid"),
    (token("alice", "acme", ["support"], secret="another-secret-of-32-bytes-or-more"),
     "sess-x", INPUT, 401, "TokenInvalid"),
    (token("alice", "", ["support"]), "sess-x", INPUT, 401, "TokenInvalid"),
    (ALICE, None, INPUT, 400, "ConfigError"),
    (ALICE, "sess-x", ["not", "an", "object"], 400, "ConfigError"),
    (ALICE, "sess-x", {"resume": "x", "order_id": "1"}, 400, "ConfigError"),
], ids=["no-token", "malformed", "wrong-key", "no-tenant", "no-session", "not-object",
        "resume-and-input"])
def test_a_bad_request_is_refused_and_starts_nothing(app: App, bearer: str | None,
                                                     session: str | None, payload: Any,
                                                     status: int, error: str) -> None:
    out = app.invoke(session, payload, bearer)
    assert out.status_code == status, out.text
    assert out.json()["error"] == error and out.json()["message"]
    assert _thread(app.db, "sess-x") == (0, 0, "none")


def test_refused_votes_and_strangers_leave_the_thread_waiting(app: App) -> None:
    assert app.invoke("sess-refuse-001", INPUT, ALICE).json()["status"] == "interrupted"
    before = _thread(app.db, "sess-refuse-001")
    self_approval = app.invoke("sess-refuse-001", {"resume": {"decision": "approve"}}, ALICE)
    assert self_approval.status_code == 403, self_approval.text
    assert self_approval.json()["error"] == "ApprovalInvalid"
    malformed = app.invoke("sess-refuse-001", {"resume": {"decision": "maybe"}}, BOB)
    assert malformed.status_code == 422, malformed.text
    stranger = app.invoke("sess-refuse-001", {"resume": {"decision": "approve"}}, EVE)
    assert stranger.status_code == 404, stranger.text
    assert "globex" not in stranger.text and "acme" not in stranger.text
    # Refused votes are audited (as the node audits them); nothing else changed.
    checkpoints, events, status = _thread(app.db, "sess-refuse-001")
    assert (checkpoints, status) == (before[0], "interrupted") and events > before[1]
    assert payments("98765") == []
    done = app.invoke("sess-refuse-001", {"resume": {"decision": "approve"}}, BOB)
    assert done.json()["values"]["status"] == "refunded"


def test_ping_is_busy_while_a_run_holds_its_lease(db_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    served = _serve(db_url, "gated", {"GATE": str(gate)})
    app = next(served)
    result: list[httpx.Response] = []
    runner = threading.Thread(target=lambda: result.append(
        app.invoke("sess-gated-0001", {}, ALICE)))
    try:
        assert app.ping() == "Healthy"
        runner.start()
        deadline = time.time() + 20
        while app.ping() != "HealthyBusy" and time.time() < deadline:
            time.sleep(0.05)
        assert app.ping() == "HealthyBusy"
        busy = app.invoke("sess-gated-0001", {}, ALICE)  # one run per thread
        assert busy.status_code == 409 and busy.json()["error"] == "ThreadBusy"
        gate.touch()
        runner.join(timeout=30)
        assert result[0].status_code == 200 and result[0].json()["values"] == {"waited": True}
        assert app.ping() == "Healthy"
    finally:
        served.close()


def test_the_containers_command_serves_the_workflow_it_names(db_url: str) -> None:
    served = _serve(db_url, None, {"STEWARD_GRAPH": "refund"})
    app = next(served)
    try:
        assert app.ping() == "Healthy"
        out = app.invoke("sess-container-01", INPUT, ALICE)
        assert out.status_code == 200 and out.json()["status"] == "interrupted", out.text
    finally:
        served.close()


@pytest.mark.parametrize(("env", "says"), [
    ({"STEWARD_GRAPH": "nope"}, "STEWARD_GRAPH='nope' is no example workflow"),
    ({"STEWARD_GRAPH": "steward.nothing:graph"}, "names nothing importable"),
    ({"STEWARD_DB_IAM_AUTH": "1"}, "STEWARD_DB_IAM_AUTH=1 needs STEWARD_DB=postgresql://"),
    ({"STEWARD_DB_IAM_AUTH": "enabled"}, "STEWARD_DB_IAM_AUTH='enabled' is neither on"),
    ({"PORT": "http"}, "PORT='http' is no TCP port"),
])
def test_the_containers_command_refuses_a_bad_setting_saying_which(
        tmp_path: Path, env: dict[str, str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "steward.aws.agentcore"], capture_output=True, text=True,
        env={**os.environ, "STEWARD_DB": f"sqlite:///{tmp_path}/x.db", "PORT": "0",
             "HOST": "127.0.0.1", **env, "PYTHONPATH": str(ROOT)}, timeout=60, check=False)
    assert done.returncode != 0 and "ConfigError" in done.stderr and says in done.stderr


def test_a_run_the_microvm_lost_goes_on_from_its_last_checkpoint(db_url: str,
                                                                 tmp_path: Path) -> None:
    """The app's process is killed (SIGKILL) mid-run; the thread reads "stalled", and the next
    invocation of the session with a null payload, on a new process, finishes it."""
    gate = tmp_path / "gate"
    served = _serve(db_url, "gated", {"GATE": str(gate)})
    app = next(served)
    lost: list[BaseException] = []

    def start() -> None:
        try:
            app.invoke("sess-lost-00001", {}, ALICE)
        except httpx.HTTPError as exc:
            lost.append(exc)

    runner = threading.Thread(target=start)
    try:
        # Before its first checkpoint there is nothing to go on from: the session says so.
        early = app.invoke("sess-lost-00001", None, ALICE)
        assert early.status_code == 400 and "no checkpoint" in early.json()["message"]
        runner.start()
        deadline = time.time() + 20
        while not Path(f"{gate}.waiting").exists() and time.time() < deadline:
            time.sleep(0.05)  # the node runs: its step's checkpoint is committed
        assert app.ping() == "HealthyBusy"
        os.kill(app.proc.pid, signal.SIGKILL)
        runner.join(timeout=30)
    finally:
        served.close()
    assert lost, "the caller saw the run end although its process was killed"
    alice = steward.Principal(id="alice", tenant="acme", roles={"support"})
    with steward.open(db_url) as rt:
        assert rt.checkpointer.thread_info("sess-lost-00001", alice)["status"] == "stalled"
    gate.touch()
    served = _serve(db_url, "gated", {"GATE": str(gate)})
    app = next(served)
    try:
        again = app.invoke("sess-lost-00001", None, ALICE)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "done" and again.json()["values"] == {"waited": True}
    finally:
        served.close()


def test_a_deployment_without_a_token_key_says_so(db_url: str) -> None:
    served = _serve(db_url, "refund", {"STEWARD_JWT_SECRET": ""})
    app = next(served)
    try:
        out = app.invoke("sess-nokey-00001", INPUT, ALICE)
        assert out.status_code == 500 and "STEWARD_JWT_SECRET" in out.json()["message"]
        assert _thread(db_url, "sess-nokey-00001") == (0, 0, "none")
    finally:
        served.close()


def test_iam_auth_from_the_environment_signs_for_the_urls_host_port_and_user(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The container's STEWARD_DB_IAM_AUTH=1: a fresh token per connection, for the database
    user the URL names (boto3 signs locally: fake credentials, no network)."""
    from steward.aws.agentcore import _db_from_env

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("STEWARD_DB_IAM_AUTH", "1")
    url = ("postgresql://steward_app@db.cluster-abc.eu-west-1.rds.amazonaws.com:5433/steward"
           "?sslmode=verify-full")
    monkeypatch.setenv("STEWARD_DB", url)
    got, options = _db_from_env()
    token = options["password"]()
    assert got == url
    assert token.startswith("db.cluster-abc.eu-west-1.rds.amazonaws.com:5433/?Action=connect"
                            "&DBUser=steward_app&")
    assert "X-Amz-Signature=" in token and "X-Amz-Expires=900" in token
    monkeypatch.setenv("STEWARD_DB_IAM_AUTH", "0")
    assert _db_from_env() == (url, {})


@pytest.mark.parametrize("on", ["1", "true", "True", "yes", "ON"])
def test_iam_auth_takes_every_documented_yes(monkeypatch: pytest.MonkeyPatch, on: str) -> None:
    """Any spelling of "on" turns IAM auth on (a URL with no user then says so), with the
    SQLAlchemy-style scheme too; anything else is refused, never silently off."""
    from steward.aws.agentcore import _db_from_env

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("STEWARD_DB_IAM_AUTH", on)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("STEWARD_DB", "postgresql+psycopg://app@db.example:5432/steward")
    _, options = _db_from_env()
    assert options["password"]().startswith("db.example:5432/?Action=connect&DBUser=app&")
    monkeypatch.setenv("STEWARD_DB", "postgresql://db.example/steward")
    with pytest.raises(steward.ConfigError, match="naming the database user"):
        _db_from_env()
    for off in ("0", "false", "No", "off", ""):
        monkeypatch.setenv("STEWARD_DB_IAM_AUTH", off)
        assert _db_from_env() == ("postgresql://db.example/steward", {})


def test_a_bad_database_port_or_iam_setting_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from steward.aws.agentcore import _db_from_env, _port

    monkeypatch.setenv("STEWARD_DB_IAM_AUTH", "1")
    monkeypatch.setenv("STEWARD_DB", "postgresql://app@db.example:54x2/steward")
    with pytest.raises(steward.ConfigError, match="names no valid port"):
        _db_from_env()
    monkeypatch.setenv("STEWARD_DB_IAM_AUTH", "sometimes")
    with pytest.raises(steward.ConfigError, match="STEWARD_DB_IAM_AUTH='sometimes'"):
        _db_from_env()
    for bad in ("eighty", "70000", "-1"):
        monkeypatch.setenv("PORT", bad)
        with pytest.raises(steward.ConfigError, match=f"PORT='{bad}' is no TCP port"):
            _port()
    monkeypatch.setenv("PORT", "9000")
    assert _port() == 9000
