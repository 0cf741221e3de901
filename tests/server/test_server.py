"""The real LangGraph server (``langgraph dev``) with Steward's checkpointer, auth and audit
route, driven with ``langgraph-sdk`` the way a chat frontend (Agent Chat UI) drives it."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from _langgraph_server import LANGGRAPH, Server, repo_config, token
from _pg import PgServer
from conftest import BACKENDS
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

ALICE = token("alice", "acme", ["support"])
BOB = token("bob", "acme", ["manager"])
MALLORY = token("mallory", "globex", ["manager"])


def test_routes_and_runs_map_the_servers_user_alike() -> None:
    """The custom HTTP routes (``steward.server.app``) and the runs (``principal_from_config``)
    read the authenticated user with one function of ``steward.identity``: kind included."""
    from types import SimpleNamespace

    from steward.identity import Principal, principal_from_config
    from steward.server.app import _principal

    class User(dict[str, Any]):
        identity = "svc-sync"
        is_authenticated = True

    user = User(tenant="acme", roles=["ops"], kind="service")
    expected = Principal(id="svc-sync", tenant="acme", roles=frozenset({"ops"}), kind="service")
    assert _principal(SimpleNamespace(scope={"user": user})) == expected
    assert principal_from_config({"configurable": {"langgraph_auth_user": user}}) == expected
    assert _principal(SimpleNamespace(scope={"user": User(roles=["ops"])})) is None
    user.is_authenticated = False
    assert _principal(SimpleNamespace(scope={"user": user})) is None


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on each backend: an embedded SQLite file, or a PostgreSQL database."""
    if not LANGGRAPH.exists():
        pytest.fail("langgraph-cli is not installed: pip install 'langgraph-steward[server]'")
    workdir = tmp_path_factory.mktemp("server")
    repo_config(workdir)
    pg: PgServer | None = None
    if request.param == "postgres":
        pg = request.getfixturevalue("pg_server")
        db = pg.create_database()
    else:
        db = f"sqlite:///{workdir}/steward.db"
    server = Server(workdir, db)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir / ".langgraph_api", ignore_errors=True)
        if pg is not None:
            pg.drop_database(db)


def _client(server: Server, tok: str | None) -> Any:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return get_client(url=server.url, headers=headers)


async def _stream(client: Any, thread_id: str, **kwargs: Any) -> list[Any]:
    return [part async for part in client.runs.stream(thread_id, "refund",
                                                      stream_mode=["updates"], **kwargs)]


def _interrupts(parts: list[Any]) -> list[Any]:
    return [i for p in parts if p.event == "updates" and isinstance(p.data, dict)
            for i in p.data.get("__interrupt__", [])]


async def test_a_chat_frontend_pauses_resumes_and_is_confined(server: Server) -> None:
    async with _client(server, ALICE) as alice, _client(server, BOB) as bob, \
            _client(server, MALLORY) as mallory:
        await _frontend_story(alice, bob, mallory)


async def _frontend_story(alice: Any, bob: Any, mallory: Any) -> None:
    thread = await alice.threads.create(metadata={"purpose": "refund"})
    tid = thread["thread_id"]
    assert thread["metadata"]["tenant"] == "acme"
    parts = await _stream(alice, tid, input={"order_id": "98765", "amount": "120.00"})
    [waiting] = _interrupts(parts)
    assert waiting["value"]["type"] == "approval_request"
    state = await alice.threads.get_state(tid)
    assert state["next"] == ["issue_refund"]
    assert state["interrupts"][0]["value"]["required_roles"] == ["manager"]
    # Another tenant sees nothing, cannot resume and finds nothing.
    with pytest.raises(NotFoundError):
        await mallory.threads.get_state(tid)
    with pytest.raises(NotFoundError):
        await _stream(mallory, tid, command={"resume": {"decision": "approve"}})
    assert await mallory.threads.search() == []
    assert tid in [t["thread_id"] for t in await bob.threads.search()]
    # The manager resumes the thread the way Agent Chat UI does.
    await _stream(bob, tid, command={"resume": {"decision": "approve", "comment": "ok"}})
    state = await alice.threads.get_state(tid)
    assert state["values"]["receipt"].startswith("TXN-")
    assert state["values"]["approved_by"] == "bob" and state["next"] == []


def _status(server: Server, headers: dict[str, str], path: str = "/threads/search") -> int:
    request = urllib.request.Request(f"{server.url}{path}", data=b"{}",
                                     headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_missing_and_bad_tokens_get_401(server: Server) -> None:
    forged = token("eve", "acme", [], "another-secret-also-32-bytes-long")
    refused = ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": f"Bearer {forged}"},
               {"X-Api-Key": "not-a-jwt"}, {"X-Api-Key": forged},
               {"Authorization": f"Basic {ALICE}"},  # only a bearer token is a token
               {"Authorization": "Bearer ", "X-Api-Key": ""},
               # two principals at once: neither is taken
               {"Authorization": f"Bearer {ALICE}", "X-Api-Key": BOB})
    for headers in refused:
        assert _status(server, headers) == 401, headers


async def test_a_token_is_taken_from_the_bearer_header_or_x_api_key(server: Server) -> None:
    """Agent Chat UI sends the key of its setup form as ``X-Api-Key`` (``langgraph-sdk``'s
    ``api_key=``); other clients send ``Authorization: Bearer``: either names the principal."""
    for headers in ({"X-Api-Key": ALICE}, {"x-api-key": ALICE},
                    {"Authorization": f"Bearer {ALICE}", "X-Api-Key": ALICE}):
        assert _status(server, headers) == 200, headers
    async with get_client(url=server.url, api_key=ALICE) as alice, \
            get_client(url=server.url, api_key=MALLORY) as mallory, \
            _client(server, BOB) as bob:
        thread = await alice.threads.create()
        tid = thread["thread_id"]
        assert thread["metadata"]["tenant"] == "acme"
        [waiting] = _interrupts(await _stream(alice, tid, input={"order_id": "55555",
                                                                 "amount": "110.00"}))
        assert waiting["value"]["requested_by"] == "alice"
        assert tid in [t["thread_id"] for t in await bob.threads.search()]
        with pytest.raises(NotFoundError):
            await mallory.threads.get(tid)
        assert tid not in [t["thread_id"] for t in await mallory.threads.search()]
    # The custom audit route authenticates as the API does: an X-Api-Key is enough.
    events = await asyncio.to_thread(lambda: server.audit(
        tid, ALICE, api_key=True, until=lambda es: es[-1]["kind"] == "run_paused"))
    assert {e["principal_id"] for e in events} == {"alice"}


async def test_the_audit_trail_streams_over_sse(server: Server) -> None:
    async with _client(server, ALICE) as alice:
        tid = (await alice.threads.create())["thread_id"]
        await _stream(alice, tid, input={"order_id": "12345", "amount": "20.00"})

    def read_events(token: str) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{server.url}/steward/threads/{tid}/audit",
                                         headers={"Authorization": f"Bearer {token}"})
        events: list[dict[str, Any]] = []
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["kind"] == "run_end":
                        return events
        return events

    events = await asyncio.to_thread(read_events, ALICE)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "guard" in kinds
    assert all(e["principal_id"] == "alice" for e in events)
    with pytest.raises(urllib.error.HTTPError) as caught:
        await asyncio.to_thread(read_events, MALLORY)
    caught.value.close()
    assert caught.value.code == 404


async def test_a_paused_thread_survives_a_restart(server: Server) -> None:
    async with _client(server, ALICE) as alice:
        tid = (await alice.threads.create())["thread_id"]
        assert _interrupts(await _stream(alice, tid, input={"order_id": "55555",
                                                            "amount": "150.00"}))
    server.stop()
    server.start()
    async with _client(server, ALICE) as alice, _client(server, BOB) as bob:
        state = await alice.threads.get_state(tid)
        assert state["next"] == ["issue_refund"]
        await _stream(bob, tid, command={"resume": {"decision": "approve"}})
        assert (await alice.threads.get_state(tid))["values"]["receipt"].startswith("TXN-")


CAROL = token("carol", "acme", ["compliance-officer"])


async def test_a_research_team_runs_through_the_server(server: Server) -> None:
    async with _client(server, ALICE) as alice, _client(server, CAROL) as carol:
        tid = (await alice.threads.create())["thread_id"]
        parts = [p async for p in alice.runs.stream(
            tid, "research", input={"inputs": {"topic": "vendor:acme-analytics"},
                                    "goal": "assess the vendor"}, stream_mode=["updates"])]
        [waiting] = _interrupts(parts)
        assert waiting["value"]["required_roles"] == ["compliance-officer"]
        assert waiting["value"]["requested_by"] == "alice"
        [p async for p in carol.runs.stream(tid, "research",
                                            command={"resume": {"decision": "approve"}},
                                            stream_mode=["updates"])]
        state = await alice.threads.get_state(tid)
        assert state["values"]["outcome"]["status"] == "done"
        assert state["values"]["members"]["summarizer"]["agent"] == "agent-writer"


CARL = token("carl", "acme", ["support", "manager"])
INTERN = token("zed", "acme", ["intern"])


async def test_a_refused_approval_leaves_the_thread_waiting(server: Server) -> None:
    from langgraph_sdk.errors import APIStatusError

    async with _client(server, CARL) as carl, _client(server, BOB) as bob, \
            _client(server, ALICE) as alice, _client(server, INTERN) as intern, \
            _client(server, CAROL) as carol:
        tid = (await carl.threads.create())["thread_id"]
        [waiting] = _interrupts(await _stream(carl, tid, input={"order_id": "55555",
                                                                "amount": "130.00"}))
        request = waiting["value"]
        before = await bob.threads.get_state(tid)
        log_before = (server.workdir / "server.log").read_text()
        refusals = (
            (carl, {"decision": "approve"}, 403, "four eyes"),  # he asked for it himself
            (carol, {"decision": "approve"}, 403, "may not write thread"),  # no reach
            (bob, {"decision": "maybe"}, 422, "'approve' or 'reject'"),
            (bob, "yes", 422, "Command(resume="),
            (intern, {"decision": "approve"}, 403, "may not write thread"),
            (alice, {"decision": "approve"}, 403, "may not write thread"),  # not her thread
        )
        for client, resume, status, says in refusals:
            with pytest.raises(APIStatusError) as caught:
                await _stream(client, tid, command={"resume": resume})
            assert caught.value.response.status_code == status
            assert says in caught.value.response.text
            thread = await bob.threads.get(tid)
            assert thread["status"] == "interrupted"
            state = await bob.threads.get_state(tid)
            assert state["interrupts"][0]["value"]["id"] == request["id"]
            assert state["checkpoint"] == before["checkpoint"]
        found = await bob.threads.search(status="interrupted")
        assert tid in [t["thread_id"] for t in found]
        log = (server.workdir / "server.log").read_text()[len(log_before):]
        assert "Traceback" not in log and "ApprovalInvalid" not in log
        # Each refused attempt is audited in the thread's chain, and the manager still can.
        await _stream(bob, tid, command={"resume": {"decision": "approve"}})
        state = await bob.threads.get_state(tid)
        assert state["values"]["receipt"].startswith("TXN-")
        assert (await bob.threads.get(tid))["status"] == "idle"

    def audit_kinds() -> list[str]:
        # The owner reads it: bob's reach ended with the run his vote resumed (its lease).
        request = urllib.request.Request(f"{server.url}/steward/threads/{tid}/audit",
                                         headers={"Authorization": f"Bearer {CARL}"})
        kinds: list[str] = []
        with urllib.request.urlopen(request, timeout=10) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    kinds.append(json.loads(line[6:])["kind"])
                    if kinds[-1] == "run_end" and "approval_vote" in kinds:
                        return kinds
        return kinds

    kinds = await asyncio.to_thread(audit_kinds)
    assert kinds.count("approval_invalid") == 3  # those who may not write (carol, with no
    # role of the request, among them) reach no request
    # Under the server too, an approver's reach ends with the run their vote resumed.
    request = urllib.request.Request(f"{server.url}/steward/threads/{tid}",
                                     headers={"Authorization": f"Bearer {BOB}"})
    with pytest.raises(urllib.error.HTTPError) as gone:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    gone.value.close()  # the refusal's response holds the socket
    assert gone.value.code == 404


async def test_an_approver_who_may_only_vote_is_refused_anything_else_before_a_run(
        server: Server) -> None:
    """Agent Chat UI shows an approver the thread's chat box and a "Mark as Resolved" button
    (a ``goto`` command). From a principal who may only vote, new input or another command is
    refused when the run is created (403), and the thread keeps waiting, instead of the run
    failing inside and the server leaving the thread in ``error``."""
    from langgraph_sdk.errors import APIStatusError

    async with _client(server, ALICE) as alice, _client(server, BOB) as bob:
        tid = (await alice.threads.create())["thread_id"]
        assert _interrupts(await _stream(alice, tid, input={"order_id": "55555",
                                                            "amount": "105.00"}))
        before = await bob.threads.get_state(tid)
        for attempt in ({"input": {"order_id": "55555", "amount": "10.00"}},
                        {"command": {"goto": "__end__"}},
                        {"command": {"update": {"amount": "1.00"}}}):
            with pytest.raises(APIStatusError) as caught:
                await _stream(bob, tid, **attempt)
            assert caught.value.response.status_code == 403, attempt
            assert "resume it with a vote" in caught.value.response.text
            assert (await bob.threads.get(tid))["status"] == "interrupted"
            assert (await bob.threads.get_state(tid))["checkpoint"] == before["checkpoint"]
        await _stream(bob, tid, command={"resume": {"decision": "approve"}})  # a vote he may
        state = await alice.threads.get_state(tid)
        assert state["values"]["receipt"].startswith("TXN-")


async def test_the_chat_agent_waits_for_a_manager_as_agent_chat_ui_drives_it(
        server: Server) -> None:
    """The graph ``agent`` (LangChain's create_agent under GuardedToolsMiddleware) takes Agent
    Chat UI's input, pauses for a manager on a large refund, refuses the requester's own
    approval, and completes once a manager approves."""
    from langgraph_sdk.errors import APIStatusError

    said = {"messages": [{"type": "human", "content": [
        {"type": "text", "text": "Please refund $120 for order 98765"}]}]}
    async with _client(server, ALICE) as alice, _client(server, BOB) as bob, \
            _client(server, MALLORY) as mallory:
        tid = (await alice.threads.create())["thread_id"]
        parts = [p async for p in alice.runs.stream(tid, "agent", input=said,
                                                    stream_mode=["values", "updates"])]
        [waiting] = _interrupts(parts)
        request = waiting["value"]
        assert (request["type"], request["action"], request["required_roles"]) == (
            "approval_request", "refund", ["manager"])
        assert request["args"] == {"order_id": "98765", "amount": "120.00"}
        assert request["action_requests"][0]["name"] == "refund"  # the approval card's
        assert request["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
        with pytest.raises(NotFoundError):
            await mallory.threads.get_state(tid)
        approve = {"decisions": [{"type": "approve"}]}  # what the card's Approve sends
        with pytest.raises(APIStatusError) as refused:
            [p async for p in alice.runs.stream(tid, "agent", command={"resume": approve})]
        assert refused.value.response.status_code == 403
        assert (await alice.threads.get(tid))["status"] == "interrupted"
        [p async for p in bob.runs.stream(tid, "agent", stream_mode=["values"],
                                          command={"resume": approve})]
        state = await alice.threads.get_state(tid)
        assert state["next"] == [] and state["interrupts"] == []
        kinds = [m["type"] for m in state["values"]["messages"]]
        assert kinds == ["human", "ai", "tool", "ai"]
        answer = state["values"]["messages"][-1]["content"]
        assert answer.startswith("Done: refunded $120.00 on order 98765 as TXN-")
        assert answer.endswith("(issued by bob).")


async def test_updating_or_deleting_a_thread_needs_access_of_ones_own(server: Server) -> None:
    """The server updates state and deletes threads with its own configs, which the saver
    trusts: its auth handlers apply the access rule first. An approver who may only vote is
    refused ``update_state`` (403) and deletion, and nothing changes; the owner may both."""
    from langgraph_sdk.errors import APIStatusError

    async with _client(server, ALICE) as alice, _client(server, BOB) as bob, \
            _client(server, MALLORY) as mallory:
        tid = (await alice.threads.create())["thread_id"]
        assert _interrupts(await _stream(alice, tid, input={"order_id": "55555",
                                                            "amount": "105.00"}))
        before = await bob.threads.get_state(tid)  # he may read it: it waits on his role
        for attempt in (bob.threads.update_state(tid, {"amount": "1.00"}),
                        bob.threads.update(tid, metadata={"forged": True}),
                        bob.threads.delete(tid)):
            with pytest.raises(APIStatusError) as caught:
                await attempt
            assert caught.value.response.status_code == 403
            assert "as an approver it may read the thread" in caught.value.response.text
        with pytest.raises(NotFoundError):
            await mallory.threads.delete(tid)
        after = await alice.threads.get_state(tid)
        assert after["checkpoint"] == before["checkpoint"] and after["values"] == before["values"]
        assert "forged" not in (await alice.threads.get(tid))["metadata"]
        await alice.threads.update(tid, metadata={"note": "mine"})
        await alice.threads.delete(tid)
        with pytest.raises(NotFoundError):
            await alice.threads.get(tid)
