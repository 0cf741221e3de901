"""``GuardedToolsMiddleware``: Steward under every tool call of a LangChain agent.

``create_agent`` sends each tool call the model makes to the tool node as a task of its own
(a ``Send``), through the ``wrap_tool_call`` hooks of its middleware. This one makes of each
call what Steward's tool executor makes of a plan step (``steward.nodes.tools``):

1. the arguments must fit the tool's schema (else the model gets the reason, nothing runs);
2. ``steward.guard(tool, args)`` asks the runtime's Cedar policy, for the run's principal:
   allow -> on; deny -> the model gets the reasons as the tool's result (``status="error"``)
   and the run goes on; approval -> the task pauses with Steward's approval interrupt (which
   carries LangChain's ``HITLRequest`` keys, so Agent Chat UI and Agent Inbox can answer it),
   and the call goes on once approved -- with the arguments the approvers approved -- or the
   model gets the rejection;
3. the tool runs through the effect ledger (``tool:<name>``, keyed by the model's tool call
   id), so that a tool with side effects acts once per call site however often its task runs
   again (after an interrupt, a retry or a crash); tools named ``read_only`` skip it.

The tool runs as the run's principal: it is in the tool's config (``runtime: ToolRuntime`` ->
``runtime.config``; ``steward.identity.principal_from_config``), after an approval the
approver's, as in Steward's tool executor. LangChain's tool node drops every
``InjectedToolArg`` value that a call carries (so that a model cannot forge them), so the
executor's injected ``principal`` and ``idempotency_key`` do not reach tools here: a tool
that needs a key for another system calls an ``@steward.effect`` function, which gets one.

The guard's decision, the approval and its votes, the ledger's calls and the tool's start and
end go to the thread's audit trail with the principal who ran each step.

Put it first in ``middleware=[...]``: LangChain's tool middleware listed after it (retries,
error handlers) then run inside the one recorded call, and none of them can turn Steward's
refusals (``ApprovalInvalid``: the thread still waits) into a tool result.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from steward.context import NodeContext, current
from steward.errors import ConfigError, PolicyDenied
from steward.guardrails.decision import Decision
from steward.guardrails.guard import aguard, guard
from steward.nodes.toolcall import approval_options, call_key, checked_args, fits, ledgered

__all__ = ["GuardedToolsMiddleware"]

Result = ToolMessage | Command[Any]
_NAME = "GuardedToolsMiddleware"


@dataclass(frozen=True)
class _Call:
    """A tool call that passed its checks: what it is, and what to run it with."""

    name: str
    call_id: str
    args: dict[str, Any]  # as the schema validated them: what the guard judges


@dataclass(frozen=True)
class _Run:
    """An allowed call: the arguments to act with (the approved ones) and its key."""

    request: ToolCallRequest
    args: dict[str, Any]
    key: str

    def to_tool(self, arguments: dict[str, Any]) -> ToolCallRequest:
        """The request the tool gets, with the arguments to act with."""
        return self.request.override(tool_call={**self.request.tool_call, "args": arguments})


class GuardedToolsMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Every tool call of a ``create_agent`` agent through Steward's policy, approvals,
    effect ledger and audit trail (see the module docstring).

    ``read_only``: names of tools without side effects, which skip the effect ledger (as
    ``ToolExecutor(read_only=...)``). ``approvals``: per tool, how its approvals wait,
    ``{"refund": {"expires_in": 3600, "on_expire": steward.Escalate(["director"])}}``.
    """

    def __init__(self, *, read_only: Iterable[str] = (),
                 approvals: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        if isinstance(read_only, str):
            raise ConfigError(f"read_only= takes tool names, e.g. [{read_only!r}], not a "
                              "string.")
        self.read_only = frozenset(read_only)
        self.approvals = approval_options(approvals)

    # -- before the guard ----------------------------------------------------------------------

    def _checked(self, request: ToolCallRequest) -> _Call | ToolMessage:
        """The call to guard, or the answer the model gets for a call that cannot run."""
        call = request.tool_call
        name, call_id = call["name"], call.get("id") or ""
        if not call_id:
            raise ConfigError(f"the model's call of {name!r} has no id, so Steward cannot key "
                              "it in the effect ledger: use a chat model that returns tool "
                              "call ids.")
        known = {t.name for t in getattr(request.runtime, "tools", None) or ()}
        unknown = sorted(self.read_only - known) if known else []
        if unknown:
            raise ConfigError(f"{_NAME}(read_only=...) names tools the agent does not have: "
                              f"{unknown}; it has {sorted(known)}.")
        args = dict(call.get("args") or {})
        if request.tool is not None:
            args, problem = checked_args(request.tool, args)
            if problem is not None:
                return _answer(name, call_id, f"Not run: {problem}.")
        return _Call(name, call_id, args)

    # -- after the guard -----------------------------------------------------------------------

    def _prepared(self, ctx: NodeContext, request: ToolCallRequest, call: _Call,
                  decision: Decision) -> _Run | ToolMessage:
        """How the allowed call runs: with the arguments the approvers approved (an edit must
        fit the tool too), under its key; or the answer the model gets if the edit does not
        fit."""
        acted = dict(call.args)
        edited = decision.args
        if edited is not None and edited != call.args:
            acted = dict(edited)  # a tool the agent does not know: its own answer says so
            if request.tool is not None:
                acted, problem = checked_args(request.tool, edited)
                if problem is not None:
                    return _answer(call.name, call.call_id, f"Not run: as edited, {problem}.")
        # The tool node runs the tool with a copy of the task's config it took before this
        # call counted anything: Steward's calls inside the tool (an effect) count on from here.
        ctx.extend_to(request.runtime.config)
        return _Run(request, acted, call_key(ctx.thread_id, call.call_id, call.name, acted))

    # -- the hooks -------------------------------------------------------------------------------

    def wrap_tool_call(self, request: ToolCallRequest,
                       handler: Callable[[ToolCallRequest], Result]) -> Result:
        """Check, guard, then run the tool once through the ledger (see the class)."""
        checked = self._checked(request)
        if isinstance(checked, ToolMessage):
            return checked
        ctx = _context()  # outside a Steward run: an error that says what to do
        try:
            decision = guard(checked.name, checked.args, editable=_fits(request),
                             **self.approvals.get(checked.name, {}))
        except PolicyDenied as refused:
            return _refused(checked, refused)
        prepared = self._prepared(ctx, request, checked, decision)
        if isinstance(prepared, ToolMessage):
            return prepared

        def run(arguments: dict[str, Any], idempotency_key: str = "") -> Result:
            # The key is the ledger's record of the call (the tool node would drop it).
            return handler(prepared.to_tool(arguments))

        if checked.name in self.read_only:
            result = run(prepared.args)
        else:
            result = ledgered(checked.name, run)(prepared.args, idempotency_key=prepared.key)
        return _noted(result, checked, prepared.args)

    async def awrap_tool_call(self, request: ToolCallRequest,
                              handler: Callable[[ToolCallRequest], Awaitable[Result]]
                              ) -> Result:
        """The async twin of :meth:`wrap_tool_call` (``agent.ainvoke``, ``astream``)."""
        checked = self._checked(request)
        if isinstance(checked, ToolMessage):
            return checked
        ctx = _context()
        try:
            decision = await aguard(checked.name, checked.args, editable=_fits(request),
                                    **self.approvals.get(checked.name, {}))
        except PolicyDenied as refused:
            return _refused(checked, refused)
        prepared = self._prepared(ctx, request, checked, decision)
        if isinstance(prepared, ToolMessage):
            return prepared

        async def run(arguments: dict[str, Any], idempotency_key: str = "") -> Result:
            # The key is the ledger's record of the call (the tool node would drop it).
            return await handler(prepared.to_tool(arguments))

        if checked.name in self.read_only:
            result = await run(prepared.args)
        else:
            result = await ledgered(checked.name, run)(prepared.args,
                                                       idempotency_key=prepared.key)
        return _noted(result, checked, prepared.args)


def _fits(request: ToolCallRequest) -> bool | Callable[[dict[str, Any]], str | None]:
    """Edits are welcome; those the tool's schema refuses are refused before they count."""
    return fits(request.tool) if request.tool is not None else True


def _context() -> NodeContext:
    try:
        return current(_NAME)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} With create_agent: create_agent(model, tools, middleware=[{_NAME}()], "
            "checkpointer=rt.checkpointer), then agent.invoke(input, rt.config(thread_id, "
            "principal)).") from exc


def _answer(name: str, call_id: str, content: str) -> ToolMessage:
    """What the model gets in place of a result for a call that did not run."""
    return ToolMessage(content=content, tool_call_id=call_id, name=name, status="error")


def _refused(call: _Call, refused: PolicyDenied) -> ToolMessage:
    """A denied or rejected call, told to the model as its tool result: the run goes on."""
    decision = refused.decision
    reasons = ("; ".join(decision.reasons) if isinstance(decision, Decision) and decision.reasons
               else str(refused))
    return _answer(call.name, call.call_id,
                   f"Not run: the policy did not allow `{call.name}`: {reasons}. Do not retry "
                   "the same call.")


def _noted(result: Result, call: _Call, acted: dict[str, Any]) -> Result:
    """The result, telling the model when the call ran with arguments an approver edited."""
    if acted == call.args or not isinstance(result, ToolMessage):
        return result
    note = (f"Note: an approver changed the arguments of this call before it ran; it ran with "
            f"{json.dumps(acted, default=str, sort_keys=True)}.")
    if isinstance(result.content, str):
        return result.model_copy(update={"content": f"{note}\n\n{result.content}"})
    return result.model_copy(update={"content": [{"type": "text", "text": note},
                                                 *result.content]})
