"""The AgentCore entrypoint (``steward.aws.agentcore``) in this process, on Starlette's test
client: what the graph sees (the runtime's store), a null payload (go on) on a session that
waits or has finished, and refusals (a later step's PolicyDenied, a same-tenant stranger)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import jwt
import pytest
from _langgraph_server import SECRET, token
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from starlette.testclient import TestClient

import steward
from steward.aws.agentcore import agentcore_app
from steward.errors import PolicyDenied

SESSION = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
ALICE = token("alice", "acme", ["support"])
DAVE = token("dave", "acme", [])  # alice's tenant, no role granted on others' threads


class S(TypedDict, total=False):
    same_store: bool
    answer: str
    step: int


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[steward.Runtime]:
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)
    with steward.open(f"sqlite:///{tmp_path}/ac.db") as runtime:
        yield runtime


def _client(rt: steward.Runtime, builder: StateGraph[S]) -> TestClient:
    return TestClient(agentcore_app(builder, runtime=rt))


def _post(client: TestClient, session: str, payload: Any, bearer: str = ALICE, *,
          stream: bool = False) -> Any:
    headers = {SESSION: session, "Authorization": f"Bearer {bearer}",
               "Content-Type": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
    return client.post("/invocations", content=json.dumps(payload), headers=headers)


def _one(name: str, node: Any) -> StateGraph[S]:
    builder = StateGraph(S)
    builder.add_node(name, node)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder


def test_the_graph_runs_on_the_runtimes_store(rt: steward.Runtime) -> None:
    with _client(rt, _one("look", lambda s: {"same_store": get_store() is rt.store})) as client:
        out = _post(client, "sess-store-1", {})
        assert out.status_code == 200, out.text
        assert out.json()["values"] == {"same_store": True}
    # A graph compiled with the runtime's checkpointer (and no store) gets the store as well.
    compiled = _one("look", lambda s: {"same_store": get_store() is rt.store}).compile(
        checkpointer=rt.checkpointer)
    with TestClient(agentcore_app(compiled, runtime=rt)) as client:
        assert _post(client, "sess-store-2", {}).json()["values"] == {"same_store": True}


def test_a_null_payload_on_a_waiting_session_says_to_send_a_resume(
        rt: steward.Runtime) -> None:
    asks = _one("ask", lambda s: {"answer": interrupt("ok?")})
    with _client(rt, asks) as client:
        assert _post(client, "sess-wait-1", {}).json()["status"] == "interrupted"
        before = rt.checkpointer.thread_info("sess-wait-1", steward.Principal(
            id="alice", tenant="acme"))
        out = _post(client, "sess-wait-1", None)
        assert out.status_code == 400, out.text
        assert out.json()["error"] == "ConfigError"
        assert '{"resume": value}' in out.json()["message"]
        assert rt.checkpointer.thread_info("sess-wait-1", steward.Principal(
            id="alice", tenant="acme")) == before  # the node did not run again
        done = _post(client, "sess-wait-1", {"resume": "yes"})
        assert done.json() == {"session_id": "sess-wait-1", "status": "done",
                               "values": {"answer": "yes"}, "interrupts": []}
        # A finished session answers a null payload with its values, as rt.resume does.
        again = _post(client, "sess-wait-1", None)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "done" and again.json()["values"] == {"answer": "yes"}
        new = _post(client, "sess-never", None)
        assert new.status_code == 400 and "no checkpoint" in new.json()["message"]
        assert "the graph's input as the payload" in new.json()["message"]


def _denied_later() -> StateGraph[S]:
    def second(s: S) -> S:
        raise PolicyDenied("policy 'no-refunds' forbids this step: ask an admin to allow it.")

    builder = StateGraph(S)
    builder.add_node("first", lambda s: {"step": 1})
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder


def test_a_step_refused_after_the_first_is_a_refusal_or_an_error_event(
        rt: steward.Runtime) -> None:
    with _client(rt, _denied_later()) as client:
        out = _post(client, "sess-policy-1", {})
        assert out.status_code == 403, out.text
        assert out.json() == {"error": "PolicyDenied", "message": "policy 'no-refunds' forbids "
                              "this step: ask an admin to allow it."}
        streamed = _post(client, "sess-policy-2", {}, stream=True)
        assert streamed.status_code == 200
        events = [json.loads(line[len("data: "):]) for line in streamed.text.splitlines()
                  if line.startswith("data: ")]
        assert events[0]["event"] == "updates" and events[0]["data"] == {"first": {"step": 1}}
        assert events[-1] == {"event": "error", "data": {
            "error": "PolicyDenied", "status": 403,
            "message": "policy 'no-refunds' forbids this step: ask an admin to allow it."}}
        assert all(e["event"] != "end" for e in events)


def test_a_same_tenant_stranger_is_refused_403_saying_what_to_do(rt: steward.Runtime) -> None:
    with _client(rt, _one("step", lambda s: {"step": 1})) as client:
        assert _post(client, "sess-own-1", {}).status_code == 200
        out = _post(client, "sess-own-1", {}, DAVE)
        assert out.status_code == 403, out.text
        assert out.json()["error"] == "ThreadAccessDenied"
        assert "Grant one" in out.json()["message"] and "'dave'" in out.json()["message"]


def test_a_token_with_bad_roles_is_401_naming_the_claim(rt: steward.Runtime) -> None:
    bad = jwt.encode({"sub": "alice", "tenant": "acme", "roles": [1, None]}, SECRET)
    with _client(rt, _one("step", lambda s: {"step": 1})) as client:
        out = _post(client, "sess-roles-1", {}, bad)
        assert out.status_code == 401 and "STEWARD_JWT_ROLES_CLAIM" in out.json()["message"]
