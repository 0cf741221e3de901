"""GuardedToolsMiddleware: every tool call of a LangChain agent (``create_agent``) through
Steward's policy, approvals, effect ledger and audit trail -- on real SQLite files and the real
PostgreSQL, sync and async, with a scripted chat model and with the real OpenAI client talking
to a local stub (issue #15)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _model_stub import serve
from _support import ALICE, BOB, SUPPORT, execute, stored
from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelCallLimitMiddleware,
    ToolCallRequest,
    ToolRetryMiddleware,
)
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Command, interrupt
from pydantic import Field

import steward
from steward.agents import GuardedToolsMiddleware
from steward.identity import principal_from_config

POLICY = """
@id("same-tenant")
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("refund-needs-manager") @approval("manager") @reason("refunds above 100.00 need a manager")
forbid (principal, action == Action::"refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };

@id("no-deletes") @reason("nobody deletes orders")
forbid (principal, action == Action::"delete_order", resource);
"""

CALLS: list[dict[str, Any]] = []  # what the tools did: the outside world
FAILED: list[str] = []  # refund attempts that failed (see FLAKY_ORDERS)
FLAKY_ORDERS = {"13579"}  # a refund on this order fails once, then goes through


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order."""
    CALLS.append({"tool": "lookup_order", "order_id": order_id})
    return {"order_id": order_id, "total": "150.00"}


@tool
def refund(order_id: str, amount: str, runtime: ToolRuntime) -> str:
    """Refund an amount on an order."""
    if order_id in FLAKY_ORDERS and not FAILED:
        FAILED.append(order_id)
        raise ConnectionError("the payment provider dropped the connection")
    principal = principal_from_config(runtime.config)
    CALLS.append({"tool": "refund", "order_id": order_id, "amount": amount,
                  "by": principal.id if principal else None})
    return f"refunded {amount} on {order_id}"


@tool
def delete_order(order_id: str) -> str:
    """Delete an order."""
    CALLS.append({"tool": "delete_order", "order_id": order_id})
    return "deleted"


PROVIDER: list[str] = []  # the idempotency keys a payment provider saw


@steward.effect(name="tests.provider_charge")
def _provider_charge(order_id: str, amount: str, *, idempotency_key: str) -> str:
    PROVIDER.append(idempotency_key)
    return f"charged {amount} on {order_id}"


@tool
def charge(order_id: str, amount: str) -> str:
    """Charge an order, through a payment provider that drops a repeated key."""
    return _provider_charge(order_id, amount)


TOOLS = [lookup_order, refund, delete_order, charge]


class ScriptedModel(BaseChatModel):
    """A chat model that answers a user's message with one AI message calling ``script`` (a
    list of ``{"name", "args"}``), and the tools' results with a summary of them. It keeps
    what it was shown in ``seen``."""

    script: list[dict[str, Any]] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        if isinstance(messages[-1], HumanMessage):
            n = len(messages)
            message = AIMessage(content="", tool_calls=[
                {"name": c["name"], "args": c["args"], "id": f"call_{n}_{i}", "type": "tool_call"}
                for i, c in enumerate(self.script)])
        else:
            results = []
            for m in reversed(messages):
                if not isinstance(m, ToolMessage):
                    break
                results.insert(0, f"{m.name} {m.status}: {m.text}")
            message = AIMessage(content="summary: " + " | ".join(results))
        return ChatResult(generations=[ChatGeneration(message=message)])


def _ask(*script: tuple[str, dict[str, Any]]) -> ScriptedModel:
    return ScriptedModel(script=[{"name": n, "args": a} for n, a in script])


def _said(text: str) -> dict[str, Any]:
    """An input as Agent Chat UI sends it."""
    return {"messages": [{"type": "human", "content": [{"type": "text", "text": text}]}]}


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    CALLS.clear()
    FAILED.clear()
    PROVIDER.clear()
    yield


@contextmanager
def _runtime(db_url: str) -> Iterator[steward.Runtime]:
    # No thread_roles: a manager reaches the thread only through the approval it waits on.
    with steward.open(db_url, policy=steward.Policy.from_cedar(POLICY), lease_ttl=5) as rt:
        yield rt


def _agent(rt: steward.Runtime, model: BaseChatModel, *middleware: AgentMiddleware[Any, Any, Any],
           **options: Any) -> Any:
    return create_agent(model, TOOLS, checkpointer=rt.checkpointer,
                        middleware=[GuardedToolsMiddleware(read_only=["lookup_order"],
                                                           **options), *middleware])


def _tool_messages(out: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


def _kinds(rt: steward.Runtime, thread: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.principal_id) for e in rt.audit.events(thread, ALICE)]


# -- allow, deny --------------------------------------------------------------------------------

def test_an_allowed_call_acts_once_as_the_principal_and_is_audited(db_url: str) -> None:
    with _runtime(db_url) as rt:
        model = _ask(("lookup_order", {"order_id": "98765"}),
                     ("refund", {"order_id": "98765", "amount": "40.00"}))
        out = _agent(rt, model).invoke(_said("refund 40 on 98765"), rt.config("T", ALICE))
        assert [c["tool"] for c in sorted(CALLS, key=lambda c: c["tool"])] == [
            "lookup_order", "refund"]
        [paid] = [c for c in CALLS if c["tool"] == "refund"]
        assert paid["by"] == "alice"  # the tool runs as the run's principal
        assert [m.status for m in _tool_messages(out)] == ["success", "success"]
        assert out["messages"][-1].content == (
            'summary: lookup_order success: {"order_id": "98765", "total": "150.00"} | '
            "refund success: refunded 40.00 on 98765")
        # Side-effecting tools go through the ledger; read-only ones skip it.
        assert execute(db_url, "SELECT name, status FROM steward_effects") == [
            ("tool:refund", "done")]
        kinds = _kinds(rt, "T")
        assert kinds.count(("guard", "alice")) == 2 and ("effect_call", "alice") in kinds
        assert ("tool_call", "alice") in kinds and ("tool_result", "alice") in kinds
        assert {who for _, who in kinds} == {"alice"}
        guards = [e.payload for e in rt.audit.events("T", ALICE) if e.kind == "guard"]
        assert {(g["action"], g["decision"]["effect"]) for g in guards} == {
            ("lookup_order", "allow"), ("refund", "allow")}
        rt.audit.verify("T")


def test_a_denied_call_is_the_tools_result_and_the_run_goes_on(db_url: str) -> None:
    with _runtime(db_url) as rt:
        model = _ask(("delete_order", {"order_id": "98765"}))
        agent = _agent(rt, model)
        out = agent.invoke(_said("delete order 98765"), rt.config("T", ALICE))
        assert CALLS == []
        [told] = _tool_messages(out)
        assert told.status == "error" and told.name == "delete_order"
        assert "nobody deletes orders" in told.text and "Not run" in told.text
        assert model.seen[-1][-1] == told  # the model got it, and answered
        assert out["messages"][-1].content.startswith("summary: delete_order error: Not run")
        assert agent.get_state(rt.config("T", ALICE)).next == ()
        [guarded] = [e for e in rt.audit.events("T", ALICE) if e.kind == "guard"]
        assert guarded.payload["decision"]["effect"] == "deny"
        assert guarded.payload["decision"]["policy_ids"] == ["no-deletes"]
        assert guarded.principal_id == "alice"


def test_arguments_that_do_not_fit_the_tool_are_refused_before_the_guard(db_url: str) -> None:
    with _runtime(db_url) as rt:
        model = _ask(("refund", {"order_id": "98765"}))  # no amount
        out = _agent(rt, model).invoke(_said("refund 98765"), rt.config("T", ALICE))
        [told] = _tool_messages(out)
        assert told.status == "error" and "do not fit its schema" in told.text
        assert CALLS == [] and "guard" not in [k for k, _ in _kinds(rt, "T")]


def test_a_tool_the_agent_does_not_have_gets_langchains_answer(db_url: str) -> None:
    with _runtime(db_url) as rt:
        out = _agent(rt, _ask(("wire_money", {"to": "x"}))).invoke(_said("wire"),
                                                                   rt.config("T", ALICE))
        [told] = _tool_messages(out)
        assert told.status == "error" and "wire_money is not a valid tool" in told.text
        assert CALLS == []


# -- approvals ----------------------------------------------------------------------------------

def _pause_for_approval(rt: steward.Runtime, amount: str = "120.00") -> tuple[Any, dict[str, Any]]:
    agent = _agent(rt, _ask(("refund", {"order_id": "98765", "amount": amount})))
    out = agent.invoke(_said(f"refund {amount} on 98765"), rt.config("T", ALICE))
    [pending] = out["__interrupt__"]
    return agent, pending.value


def test_an_approval_waits_and_only_another_principal_can_give_it(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent, request = _pause_for_approval(rt)
        assert (request["type"], request["action"], request["required_roles"],
                request["requested_by"]) == ("approval_request", "refund", ["manager"], "alice")
        assert request["args"] == {"order_id": "98765", "amount": "120.00"}
        assert request["reasons"] == ["refunds above 100.00 need a manager"]
        assert CALLS == []
        before = agent.get_state(rt.config("T", ALICE))
        with pytest.raises(steward.ApprovalInvalid, match="four eyes"):
            agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", ALICE))
        after = agent.get_state(rt.config("T", ALICE))
        assert after.next == ("tools",) and after.interrupts[0].value["id"] == request["id"]
        assert after.config == before.config and CALLS == []
        assert [r["id"] for r in rt.approvals.pending(BOB)] == [request["id"]]
        out = agent.invoke(Command(resume={"decision": "approve", "comment": "ok"}),
                           rt.config("T", BOB))
        assert [(c["tool"], c["amount"], c["by"]) for c in CALLS] == [("refund", "120.00", "bob")]
        assert out["messages"][-1].content == "summary: refund success: refunded 120.00 on 98765"
        [record] = rt.approvals.history("T", ALICE)
        assert record["status"] == "approved" and record["votes"][0]["voter"] == "bob"
        kinds = _kinds(rt, "T")
        assert ("approval_invalid", "alice") in kinds and ("approval_vote", "bob") in kinds
        assert ("effect_call", "bob") in kinds
        rt.audit.verify("T")


def test_the_approval_carries_langchains_hitl_request(db_url: str) -> None:
    with _runtime(db_url) as rt:
        _, request = _pause_for_approval(rt)
        [action] = request["action_requests"]
        assert action["name"] == "refund" and action["args"] == request["args"]
        assert "refunds above 100.00 need a manager" in action["description"]
        [review] = request["review_configs"]
        assert review["action_name"] == "refund"
        assert set(review["allowed_decisions"]) >= {"approve", "reject"}


def test_a_rejection_is_told_to_the_model(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent, _ = _pause_for_approval(rt)
        out = agent.invoke(Command(resume={"decision": "reject", "comment": "not this one"}),
                           rt.config("T", BOB))
        assert CALLS == []
        [told] = _tool_messages(out)
        assert told.status == "error" and "rejected by bob (not this one)" in told.text
        assert out["messages"][-1].content.startswith("summary: refund error: Not run")
        assert agent.get_state(rt.config("T", ALICE)).next == ()


@pytest.mark.parametrize(("resume", "done"), [
    ({"decisions": [{"type": "approve"}]}, "120.00"),
    ({"decisions": [{"type": "reject", "message": "not today"}]}, None),
    ([{"type": "accept", "args": None}], "120.00"),  # Agent Inbox's legacy answer
    ({"decisions": [{"type": "edit", "edited_action": {
        "name": "refund", "args": {"order_id": "98765", "amount": "90.00"}}}]}, "90.00"),
], ids=["approve", "reject", "inbox-accept", "edit"])
def test_langchains_decisions_resume_it(db_url: str, resume: Any, done: str | None) -> None:
    with _runtime(db_url) as rt:
        agent, _ = _pause_for_approval(rt)
        out = agent.invoke(Command(resume=resume), rt.config("T", BOB))
        [told] = _tool_messages(out)
        if done is None:
            assert CALLS == [] and told.status == "error" and "not today" in told.text
            return
        assert [(c["amount"], c["by"]) for c in CALLS] == [(done, "bob")]
        assert told.status == "success" and told.text.endswith(f"refunded {done} on 98765")
        edited = done != "120.00"
        assert ("an approver changed the arguments" in told.text) is edited
        effects = execute(db_url, "SELECT name, status FROM steward_effects")
        assert effects == [("tool:refund", "done")]


def test_a_standing_approval_lets_the_next_calls_through(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent, _ = _pause_for_approval(rt)
        standing = {"decision": "approve", "standing": {"uses": 1, "expires_in": 3600}}
        agent.invoke(Command(resume=standing), rt.config("T", BOB))
        out = agent.invoke(_said("the same again"), rt.config("T", ALICE))  # the next turn
        assert "__interrupt__" not in out  # no need to ask: the standing approval is used
        assert [(c["amount"], c["by"]) for c in CALLS] == [("120.00", "bob"), ("120.00", "alice")]
        out = agent.invoke(_said("and once more"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["type"] == "approval_request"  # used up
        kinds = [k for k, _ in _kinds(rt, "T")]
        assert kinds.count("approval_standing_use") == 1


@pytest.mark.parametrize("resume", [
    {"decision": "maybe"}, "yes", {"decisions": [{"type": "approve"}, {"type": "approve"}]},
    {"decisions": [{"type": "edit", "edited_action": {"name": "refund",
                                                      "args": {"order_id": "98765"}}}]},
], ids=["unknown-decision", "not-a-dict", "two-decisions", "edit-the-policy-cannot-judge"])
def test_a_malformed_answer_is_refused_and_the_thread_still_waits(db_url: str,
                                                                   resume: Any) -> None:
    with _runtime(db_url) as rt:
        agent, request = _pause_for_approval(rt)
        with pytest.raises(steward.ApprovalInvalid, match=r"still waits|not allowed"):
            agent.invoke(Command(resume=resume), rt.config("T", BOB))
        state = agent.get_state(rt.config("T", ALICE))
        assert state.interrupts[0].value["id"] == request["id"] and CALLS == []
        agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert [(c["amount"], c["by"]) for c in CALLS] == [("120.00", "bob")]


def test_an_edit_the_tool_cannot_take_is_refused_and_the_thread_still_waits(
        db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent, request = _pause_for_approval(rt)
        before = stored(db_url)
        edit = {"name": "refund", "args": {"order_id": "98765", "amount": "90.00", "note": "x"}}
        with pytest.raises(steward.ApprovalInvalid, match="'refund' takes no arguments"):
            agent.invoke(Command(resume={"decisions": [{"type": "edit", "edited_action": edit}]}),
                         rt.config("T", BOB))
        assert stored(db_url) == before
        assert agent.get_state(rt.config("T", ALICE)).interrupts[0].value["id"] == request["id"]
        assert CALLS == [] and rt.approvals.history("T", ALICE)[0]["votes"] == []
        agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert [(c["amount"], c["by"]) for c in CALLS] == [("120.00", "bob")]


# -- exactly once -------------------------------------------------------------------------------

class ConfirmResults(AgentMiddleware[Any, Any, Any]):
    """A user's middleware that, after a tool ran, asks a person to confirm its result before
    the model sees it: the tool call's task pauses *after* the tool acted, and runs again from
    its first line when the confirmation comes."""

    def wrap_tool_call(self, request: ToolCallRequest,
                       handler: Callable[[ToolCallRequest], Any]) -> Any:
        result = handler(request)
        answer = interrupt({"type": "confirm", "result": result.text})
        return result.model_copy(update={"content": f"{result.text} (confirmed: {answer})"})


def test_a_tool_acts_once_when_its_task_runs_again_after_an_interrupt(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent = create_agent(
            _ask(("refund", {"order_id": "98765", "amount": "120.00"})), TOOLS,
            middleware=[ConfirmResults(), GuardedToolsMiddleware()],
            checkpointer=rt.checkpointer)
        out = agent.invoke(_said("refund 120 on 98765"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["type"] == "approval_request" and CALLS == []
        out = agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert out["__interrupt__"][0].value == {"type": "confirm",
                                                 "result": "refunded 120.00 on 98765"}
        assert len(CALLS) == 1  # the refund went out; the task now waits after it
        out = agent.invoke(Command(resume="yes"), rt.config("T", ALICE))
        assert len(CALLS) == 1  # the task ran again: the ledger replayed the refund
        [told] = _tool_messages(out)
        assert told.text == "refunded 120.00 on 98765 (confirmed: yes)"
        kinds = [k for k, _ in _kinds(rt, "T")]
        assert kinds.count("effect_call") == 1 and kinds.count("effect_replay") == 1
        assert kinds.count("approval_vote") == 1  # the vote was not asked for again
        assert execute(db_url, "SELECT status, attempts FROM steward_effects") == [("done", 1)]


def test_an_effect_inside_a_tool_has_a_call_site_and_key_of_its_own(db_url: str) -> None:
    """A tool that needs a key for another system calls an ``@steward.effect`` function: it
    counts on from the middleware's own record of the call, and gets a stable key."""
    with _runtime(db_url) as rt:
        agent = create_agent(_ask(("charge", {"order_id": "98765", "amount": "40.00"})), TOOLS,
                             middleware=[ConfirmResults(), GuardedToolsMiddleware()],
                             checkpointer=rt.checkpointer)
        agent.invoke(_said("charge 40"), rt.config("T", ALICE))
        out = agent.invoke(Command(resume="fine"), rt.config("T", ALICE))  # the task re-runs
        assert _tool_messages(out)[0].text == "charged 40.00 on 98765 (confirmed: fine)"
        [key] = PROVIDER
        assert key.startswith("stw-")
        rows = execute(db_url, "SELECT seq, name, status FROM steward_effects ORDER BY seq")
        assert rows == [(0, "tool:charge", "done"), (1, "tests.provider_charge", "done")]


def test_calls_of_one_model_turn_each_act_once(db_url: str) -> None:
    """Each tool call is a task of its own (``Send``): one waits for approval while the other
    acts, and the resume runs only the one that waited."""
    with _runtime(db_url) as rt:
        agent = _agent(rt, _ask(("refund", {"order_id": "11111", "amount": "40.00"}),
                                ("refund", {"order_id": "22222", "amount": "120.00"})))
        out = agent.invoke(_said("two refunds"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["args"]["order_id"] == "22222"
        assert [c["order_id"] for c in CALLS] == ["11111"]
        out = agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert [(c["order_id"], c["by"]) for c in CALLS] == [("11111", "alice"),
                                                             ("22222", "bob")]
        keys = execute(db_url, "SELECT idempotency_key FROM steward_effects")
        assert len({k for (k,) in keys}) == 2  # one ledger entry, one key per call
        assert [m.status for m in _tool_messages(out)] == ["success", "success"]


# -- composition, options, the install ----------------------------------------------------------

def test_it_composes_with_langchains_middleware(db_url: str) -> None:
    """Listed first, it wraps LangChain's tool retries: every attempt is inside the one recorded
    call; the model-call limit runs alongside."""
    with _runtime(db_url) as rt:
        retry = ToolRetryMiddleware(max_retries=2, retry_on=(ConnectionError,),
                                    initial_delay=0.0, jitter=False)
        limit = ModelCallLimitMiddleware(run_limit=5, exit_behavior="end")
        agent = _agent(rt, _ask(("refund", {"order_id": "13579", "amount": "40.00"})),
                       retry, limit)
        out = agent.invoke(_said("refund 40 on 13579"), rt.config("T", ALICE))
        assert FAILED == ["13579"] and len(CALLS) == 1  # failed once, retried, paid once
        assert _tool_messages(out)[0].status == "success"
        assert execute(db_url, "SELECT name, status, attempts FROM steward_effects") == [
            ("tool:refund", "done", 1)]
        assert out["messages"][-1].content == "summary: refund success: refunded 40.00 on 13579"


def test_outside_a_steward_run_it_says_what_to_do() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    agent = create_agent(_ask(("lookup_order", {"order_id": "1"})), TOOLS,
                         middleware=[GuardedToolsMiddleware()], checkpointer=InMemorySaver())
    with pytest.raises(steward.ConfigError, match=r"checkpointer=rt.checkpointer"):
        agent.invoke(_said("look"), {"configurable": {"thread_id": "T"}})
    assert CALLS == []


def test_options_are_checked(db_url: str) -> None:
    with pytest.raises(steward.ConfigError, match="tool names"):
        GuardedToolsMiddleware(read_only="lookup_order")
    with pytest.raises(steward.ConfigError, match="expires_in and on_expire"):
        GuardedToolsMiddleware(approvals={"refund": {"expire": 5}})
    with _runtime(db_url) as rt:
        agent = create_agent(_ask(("lookup_order", {"order_id": "1"})), TOOLS,
                             middleware=[GuardedToolsMiddleware(read_only=["lookup_ordre"])],
                             checkpointer=rt.checkpointer)
        with pytest.raises(steward.ConfigError, match=r"\['lookup_ordre'\]"):
            agent.invoke(_said("look"), rt.config("T", ALICE))
        assert CALLS == []


def test_approvals_options_reach_the_request(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent = _agent(rt, _ask(("refund", {"order_id": "98765", "amount": "120.00"})),
                       approvals={"refund": {"expires_in": 3600}})
        out = agent.invoke(_said("refund"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["expires_at"] is not None


def test_steward_imports_without_langchain_agents() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain'] = None  # as if the agents extra were not installed\n"
        "import steward, steward.examples.chat, steward.server.runtime\n"
        "try:\n"
        "    import steward.agents\n"
        "except steward.ConfigError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'langgraph-steward[agents]'" in done.stdout


# -- async --------------------------------------------------------------------------------------

async def test_the_async_path_guards_asks_and_acts_once(db_url: str) -> None:
    async with steward.aopen(db_url, policy=steward.Policy.from_cedar(POLICY),
                             lease_ttl=5) as rt:
        agent = _agent(rt, _ask(("delete_order", {"order_id": "98765"}),
                                ("refund", {"order_id": "98765", "amount": "120.00"})))
        out = await agent.ainvoke(_said("delete it and refund 120"), rt.config("T", ALICE))
        [pending] = out["__interrupt__"]
        assert pending.value["action"] == "refund" and CALLS == []
        with pytest.raises(steward.ApprovalInvalid, match="four eyes"):
            await agent.ainvoke(Command(resume={"decision": "approve"}), rt.config("T", ALICE))
        state = await agent.aget_state(rt.config("T", ALICE))
        assert state.interrupts[0].value["id"] == pending.value["id"]
        out = await agent.ainvoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert [(c["tool"], c["by"]) for c in CALLS] == [("refund", "bob")]
        denied, paid = _tool_messages(out)
        assert denied.status == "error" and "nobody deletes orders" in denied.text
        assert paid.status == "success"
        kinds = [(e.kind, e.principal_id) for e in await rt.audit.aevents("T", ALICE)]
        assert ("approval_vote", "bob") in kinds and ("effect_call", "bob") in kinds
        assert kinds.count(("effect_call", "bob")) == 1
        await rt.audit.averify("T")


# -- a real client ------------------------------------------------------------------------------

def _openai(url: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=f"{url}/v1", api_key="sk-test",
                      max_retries=0, timeout=10)


def test_the_real_openai_client_through_the_stub(db_url: str) -> None:
    args = {"order_id": "98765", "amount": "120.00"}
    with serve(args, answer="The refund is on its way.") as stub, _runtime(db_url) as rt:
        agent = create_agent(_openai(stub.url), [refund], checkpointer=rt.checkpointer,
                             middleware=[GuardedToolsMiddleware()])
        out = agent.invoke(_said("Please refund $120 for order 98765"), rt.config("T", ALICE))
        assert out["__interrupt__"][0].value["args"] == args and CALLS == []
        out = agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        assert [(c["amount"], c["by"]) for c in CALLS] == [("120.00", "bob")]
        assert out["messages"][-1].content == "The refund is on its way."
        (_, first), (_, second) = stub.requests
        assert [t["function"]["name"] for t in first["tools"]] == ["refund"]
        offered = first["tools"][0]["function"]["parameters"]["properties"]
        assert set(offered) == {"order_id", "amount"}  # injected arguments stay hidden
        [result] = [m for m in second["messages"] if m["role"] == "tool"]
        assert result["content"] == "refunded 120.00 on 98765"


def test_a_denial_reaches_the_real_client_as_the_tool_result(db_url: str) -> None:
    with serve({"order_id": "98765"}, answer="I cannot do that.") as stub, \
            _runtime(db_url) as rt:
        agent = create_agent(_openai(stub.url), [delete_order], checkpointer=rt.checkpointer,
                             middleware=[GuardedToolsMiddleware()])
        out = agent.invoke(_said("delete order 98765"), rt.config("T", ALICE))
        assert CALLS == [] and out["messages"][-1].content == "I cannot do that."
        [result] = [m for m in stub.requests[1][1]["messages"] if m["role"] == "tool"]
        assert "nobody deletes orders" in result["content"]


# -- a crash --------------------------------------------------------------------------------------

CRASH_ROUNDS = 2  # per backend


def test_a_tool_that_acted_acts_once_across_a_kill(db_url: str, tmp_path: Path) -> None:
    """SIGKILL the agent's process right after its tool acted, before the tool's task saved
    its result; resume it from this process: the tool acted exactly once."""
    from _agent_worker import LEASE_TTL, build, run

    rng = random.Random(db_url.split(":")[0])
    with steward.open(db_url):
        pass  # the schema, once, outside the kills
    for n in range(CRASH_ROUNDS):
        thread, world, marks = f"T-{n}", tmp_path / f"world-{n}", tmp_path / f"marks-{n}"
        proc = subprocess.Popen(
            [sys.executable, str(SUPPORT / "_agent_worker.py"), db_url, thread, str(world),
             str(marks)], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (marks.exists() and "returned" in marks.read_text().split()):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the worker's tool never returned"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert "finished" not in marks.read_text().split(), "the kill came too late"
        assert world.read_text().split("\n")[:-1] == ["98765 40.00"]
        with steward.open(db_url, lease_ttl=LEASE_TTL) as rt:
            agent = build(rt.checkpointer, str(world), str(marks))
            config = rt.config(thread, ALICE)
            assert agent.get_state(config).next == ("tools",)  # the kill left the call unsaved
            out = run(agent, None, config)  # resume what the killed process left
            assert out["messages"][-1].content == "Done: refunded $40.00 on order 98765."
            assert world.read_text().split("\n")[:-1] == ["98765 40.00"]  # exactly once
            kinds = [e.kind for e in rt.audit.events(thread, ALICE)]
            assert kinds.count("effect_call") == 1 and kinds.count("effect_replay") == 1
