"""LangChain's Agent Chat UI, unmodified, in headless Chromium, against the real ``langgraph
dev`` serving Steward's refund chat agent (the graph ``agent``): Alice asks for a refund in the
chat, the approval card appears (Approve, Edit, Reject), her own approval is refused and the
card stays; Bob finds the thread in his history and opens it in a browser of his own, may not
"Mark as Resolved" (he may only vote), approves, and the conversation completes; the audit
trail shows Alice's refused attempt and Bob's vote; another tenant's user sees nothing of it.

The UI runs under ``next dev`` from a temporary copy (tests/_chat_ui.py); each person's token
is the UI's "API key", which it keeps in the browser's local storage (``lg:chat:apiKey``) and
sends as ``X-Api-Key``. Screenshots of the approval card and of the completed thread are saved
in the test's temporary directory. Skipped, with the reason, where Chromium, Node.js or the
snapshot is missing; ``.ci/run`` installs what CI needs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _chat_ui import CHROMIUM, CHROMIUM_ARGS, ChatUI, missing
from _langgraph_server import LANGGRAPH, Server, free_port, repo_config, token

WHY_NOT = missing()
# .ci/run installs what the test needs and sets STEWARD_REQUIRE_BROWSER=1: there, it must run.
REQUIRED = os.environ.get("STEWARD_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(WHY_NOT is not None and not REQUIRED,
                                reason=f"browser test: {WHY_NOT}")

ALICE = token("alice", "acme", ["support"])
BOB = token("bob", "acme", ["manager"])
MALLORY = token("mallory", "globex", ["manager"])
ASK = "Please refund $120 for order 98765"
VIEWPORT = {"width": 1280, "height": 1400}
# What a screenshot leaves out: next dev's own overlay (its "issues" badge).
NO_DEV_OVERLAY = "nextjs-portal { display: none !important; }"


@dataclass
class Stack:
    workdir: Path
    server: Server
    ui: ChatUI
    browser: Any
    pages: dict[str, Any] = field(default_factory=dict)

    def page(self, name: str, tok: str) -> Any:
        """A page in a browser context of one person, whose API key (their token) the UI
        finds where its setup form keeps it."""
        context = self.browser.new_context(viewport=VIEWPORT, storage_state={
            "cookies": [], "origins": [{"origin": self.ui.url, "localStorage": [
                {"name": "lg:chat:apiKey", "value": tok}]}]})
        page = context.new_page()
        self.pages[name] = page
        return page

    @contextlib.contextmanager
    def shots_on_failure(self) -> Iterator[None]:
        """On a failure, what each person's page showed (``failed-<name>.png``)."""
        try:
            yield
        except BaseException:
            for name, page in self.pages.items():
                with contextlib.suppress(Exception):
                    self.shot(page, f"failed-{name}.png")
            raise

    def shot(self, page: Any, name: str, element: Any = None) -> Path:
        """A screenshot of the page as its person sees it (the UI scrolls inside a window of
        fixed height), or of one element of it."""
        path = self.workdir / "screenshots" / name
        page.wait_for_timeout(800)  # the UI's transitions (its toasts slide in) settle
        # Playwright scrolls what it clicks into view, also sideways inside the UI's clipped
        # layout (its artifact panel waits, off screen, on the right): scroll back, as a
        # person's page is.
        page.evaluate("""() => document.querySelectorAll('*').forEach(e => {
            if (e.scrollLeft > 0) e.scrollLeft = 0; })""")
        (element or page).screenshot(path=str(path), style=NO_DEV_OVERLAY)
        return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from playwright.sync_api import sync_playwright

    assert WHY_NOT is None, f"STEWARD_REQUIRE_BROWSER=1, but {WHY_NOT}"
    assert LANGGRAPH.exists(), "langgraph-cli is not installed: pip install -e '.[dev]'"
    workdir = tmp_path_factory.mktemp("chat-ui")
    (workdir / "screenshots").mkdir()
    config = json.loads(repo_config(workdir).read_text())  # the repository's, as it is
    assert "agent" in config["graphs"], "langgraph.json serves no graph 'agent'"
    server = Server(workdir, f"sqlite:///{workdir}/steward.db", env={
        "STEWARD_DEMO_LEDGER": str(workdir / "payments.db"),
        "STEWARD_DEMO_RECORDS": str(workdir / "records.db")})
    port = free_port()
    ui = ChatUI(workdir, f"http://127.0.0.1:{port}", "agent")
    started = time.monotonic()
    try:
        ui.install()
        ui.start()  # next dev compiles while the LangGraph server starts
        server.start(port)
        ui.ready()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            try:
                yield Stack(workdir, server, ui, browser)
            finally:
                browser.close()
    finally:
        ui.stop()
        server.stop()
        shutil.rmtree(workdir / ".langgraph_api", ignore_errors=True)
        ui.timings["whole_stack"] = round(time.monotonic() - started, 2)
        (workdir / "timings.json").write_text(json.dumps(ui.timings, indent=2))


def _thread_id(page: Any) -> str:
    page.wait_for_url(re.compile(r"[?&]threadId="), timeout=30_000)
    found = re.search(r"[?&]threadId=([0-9a-f-]+)", page.url)
    assert found, page.url
    return found.group(1)


def _card(page: Any) -> Any:
    """Agent Chat UI's approval card (its agent-inbox ThreadView), once it shows."""
    approve = page.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(timeout=60_000)
    return page.locator("div.rounded-2xl").filter(has=approve).last


def _run_answer(page: Any, click: Any) -> Any:
    """Click, and the server's answer to the run the click started."""
    with page.expect_response(lambda r: r.request.method == "POST"
                              and re.search(r"/threads/[^/]+/runs/stream$", r.url)
                              is not None, timeout=30_000) as answer:
        click()
    return answer.value


def _searched(response: Any) -> bool:
    """The UI's request for its thread history (the sidebar)."""
    return bool(response.request.method == "POST" and response.url.endswith("/threads/search"))


def _api(server: Server, tok: str) -> Any:
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server.url, api_key=tok)


@pytest.mark.timeout(600)  # a cold npm install and next's first compile on a busy machine
def test_an_approval_in_agent_chat_ui(stack: Stack) -> None:
    with stack.shots_on_failure():
        _story(stack)


def _story(stack: Stack) -> None:
    # Alice asks in the chat; the agent's refund needs a manager: the approval card shows.
    alice = stack.page("alice", ALICE)
    alice.goto(stack.ui.url)
    alice.get_by_placeholder("Type your message...").fill(ASK)
    alice.get_by_role("button", name="Send").click()
    tid = _thread_id(alice)
    card = _card(alice)
    for label in ("Edit/Approve", "Reject"):
        card.get_by_text(label, exact=True).wait_for()
    card.get_by_role("button", name="Submit rejection").wait_for()
    assert card.get_by_role("textbox").nth(0).input_value() in ("98765", "120.00")
    stack.shot(alice, "approval-card.png", card)
    stack.shot(alice, "alice-waiting.png")

    # Her own Approve is refused before any run starts (four eyes), and the card stays.
    refused = _run_answer(alice, card.get_by_role("button", name="Approve").click)
    assert refused.status == 403, refused.text()
    assert "four eyes" in refused.text()
    alice.get_by_text(re.compile(r"HTTP 403.*four eyes")).wait_for()  # the UI says why
    assert card.get_by_role("button", name="Approve").is_visible()
    stack.shot(alice, "alice-refused.png")
    with _api(stack.server, BOB) as api:
        assert api.threads.get(tid)["status"] == "interrupted"
        [waiting] = api.threads.get_state(tid)["interrupts"]
    assert waiting["value"]["requested_by"] == "alice"

    # Bob opens the same thread in a browser of his own and approves: the chat completes.
    bob = stack.page("bob", BOB)
    with bob.expect_response(_searched) as listed:
        bob.goto(f"{stack.ui.url}/?threadId={tid}")
    assert tid in [t["thread_id"] for t in listed.value.json()]  # in his thread history
    bob_card = _card(bob)
    # He may vote, nothing more: the card's "Mark as Resolved" (a goto command) is refused.
    resolved = _run_answer(bob, bob_card.get_by_role("button", name="Mark as Resolved").click)
    assert resolved.status == 403 and "resume it with a vote" in resolved.text()
    bob.get_by_text(re.compile(r"HTTP 403")).first.wait_for()
    approved = _run_answer(bob, bob_card.get_by_role("button", name="Approve").click)
    assert approved.status == 200
    done = bob.get_by_text(re.compile(r"refunded \$120\.00 on order 98765")).last
    done.wait_for(timeout=60_000)
    bob.get_by_role("button", name="Approve").wait_for(state="detached")
    stack.shot(bob, "completed.png")
    with _api(stack.server, ALICE) as api:
        assert api.threads.get(tid)["status"] == "idle"
        state = api.threads.get_state(tid)
    assert state["interrupts"] == [] and "bob" in str(state["values"]["messages"][-1])

    # The thread's audit trail: Alice's refused self-approval, then Bob's vote.
    events = stack.server.audit(tid, ALICE, until=lambda ev: ev[-1]["kind"] == "run_end")
    votes = [e for e in events if e["kind"] == "approval_vote"]
    assert [(v["principal_id"], v["payload"]["voter"], v["payload"]["decision"])
            for v in votes] == [("bob", "bob", "approve")]
    [invalid] = [e for e in events if e["kind"] == "approval_invalid"]
    assert invalid["principal_id"] == "alice" and "four eyes" in invalid["payload"]["reason"]

    # Mallory, of another tenant, finds nothing: not in the API, not in her browser.
    from langgraph_sdk.errors import NotFoundError

    with _api(stack.server, MALLORY) as api:
        with pytest.raises(NotFoundError):
            api.threads.get(tid)
        assert tid not in [t["thread_id"] for t in api.threads.search(limit=100)]
    mallory = stack.page("mallory", MALLORY)
    with mallory.expect_response(lambda r: f"/threads/{tid}/history" in r.url) as history, \
            mallory.expect_response(_searched) as listed:
        mallory.goto(f"{stack.ui.url}/?threadId={tid}")
    assert history.value.status == 404
    assert listed.value.ok and tid not in [t["thread_id"] for t in listed.value.json()]
    mallory.wait_for_timeout(1000)
    assert mallory.get_by_text("98765").count() == 0
    assert mallory.get_by_role("button", name="Approve").count() == 0
