"""The tool executor: runs the plan's next step (or a model's tool calls) safely.

For each call, in this order -- the same on every run of the node, so that a re-run after an
approval, a retry or a crash lines up with what was recorded:

1. the tool must exist and its arguments must pass its schema (pydantic, from the tool);
2. ``steward.guard(tool, args)``: the runtime's policy may deny, or pause for approval;
3. the call runs through the effect ledger (``@steward.effect``), so a side effect happens at
   most once per call site however often the node runs; read-only tools may skip it;
4. inside that one recorded call: a timeout per attempt, and retries with exponential backoff
   and jitter on errors the tool marks transient (``Transient``, ``TimeoutError``,
   ``ConnectionError``), all under one idempotency key; an attempt that timed out is a
   ``tool_error`` in the run's callbacks (the audit trail) when the executor stops waiting;
5. tools act with the caller's identity: a tool that declares an injected ``principal``
   argument (``Annotated[dict, InjectedToolArg]``) receives the acting principal, and one that
   declares ``idempotency_key`` receives the call's key.

Every outcome is recorded in the working context: the step's result, or a typed error
(``unknown_tool``, ``invalid_args``, ``denied``, ``timeout``, ``tool_error``) that the
validate node routes (retry, escalate, fail). Nothing half-done is written: a node either
returns its whole update or raises.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import inspect
import random
import time
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks.manager import CallbackManager, CallbackManagerForToolRun
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.config import get_config
from pydantic import BaseModel, ValidationError

from steward.context import current
from steward.errors import ConfigError, PolicyDenied
from steward.guardrails.guard import guard
from steward.nodes.toolcall import (
    approval_options,
    call_key,
    checked_args,
    fields,
    fits,
    ledgered,
)
from steward.state import ErrorRecord, Step, WorkingContext, next_step

__all__ = ["Retry", "ToolExecutor", "Transient"]


class Transient(Exception):
    """Raise it (or a subclass) from a tool for a failure worth retrying: the service was
    busy, the connection dropped. Other exceptions fail the call at once."""


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with jitter: attempt n waits initial * factor**(n-1), at most
    max_delay, scaled by a random factor in [1 - jitter, 1 + jitter]."""

    attempts: int = 3
    initial: float = 0.2
    factor: float = 2.0
    max_delay: float = 5.0
    jitter: float = 0.5
    on: tuple[type[BaseException], ...] = (Transient, TimeoutError, ConnectionError)

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.initial * self.factor ** (attempt - 1))
        return max(0.0, base * rng.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass
class _Call:
    """One tool call to make: from a plan step or a model's tool call."""

    tool: str
    args: dict[str, Any]
    step: Step | None = None
    call_id: str | None = None


@dataclass
class _Outcome:
    result: Any = None
    error: ErrorRecord | None = None
    approval: dict[str, Any] | None = None


def _as_tool(item: BaseTool | Callable[..., Any]) -> BaseTool:
    if isinstance(item, BaseTool):
        return item
    if callable(item):
        return StructuredTool.from_function(item)
    raise ConfigError(f"tools are LangChain tools or plain functions, got {item!r}.")


def _typed(tool: BaseTool, result: Any) -> str | None:
    """A result that does not fit the tool function's declared return model, or None."""
    func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    model = inspect.signature(func).return_annotation if func is not None else None
    if isinstance(model, str):  # postponed annotations
        model = typing.get_type_hints(func).get("return")
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    try:
        model.model_validate(result.model_dump() if isinstance(result, BaseModel) else result)
    except ValidationError as exc:
        return f"the result does not fit {model.__name__}: {exc.errors(include_url=False)}"
    return None


def _gave_up(run_id: uuid.UUID, error: TimeoutError) -> None:
    """Tell the run's callbacks (the audit trail, tracing) that the call ``run_id`` failed:
    the executor stopped waiting for it. An answer it gives later is no longer its outcome."""
    try:
        config = get_config()
    except RuntimeError:
        return
    manager = CallbackManager.configure(inheritable_callbacks=config.get("callbacks"))
    CallbackManagerForToolRun(
        run_id=run_id, handlers=manager.handlers, inheritable_handlers=manager.handlers,
        parent_run_id=manager.parent_run_id, tags=manager.tags,
        inheritable_tags=manager.inheritable_tags, metadata=manager.metadata,
        inheritable_metadata=manager.inheritable_metadata).on_tool_error(error)


def _error(kind: str, message: str, call: _Call) -> ErrorRecord:
    return {"type": kind, "message": message[:2000],  # type: ignore[typeddict-item]
            "step": call.step.get("id") if call.step else None, "tool": call.tool,
            "at": time.time()}


class ToolExecutor:
    """A node that runs the working context's next pending plan step, or else the tool calls
    of the last AI message that have no answer yet (see the module docstring)."""

    def __init__(self, tools: Sequence[BaseTool | Callable[..., Any]], *,
                 timeout: float | Mapping[str, float] = 30.0, retry: Retry | None = None,
                 read_only: Iterable[str] = (), use_guard: bool = True,
                 approvals: Mapping[str, Mapping[str, Any]] | None = None,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        self.tools = {t.name: t for t in map(_as_tool, tools)}
        if not self.tools:
            raise ConfigError("ToolExecutor needs at least one tool.")
        self.timeout = timeout
        self.retry = retry or Retry()
        self.read_only = frozenset(read_only)
        unknown = self.read_only - set(self.tools)
        if unknown:
            raise ConfigError(f"read_only names tools that are not given: {sorted(unknown)}.")
        self.use_guard = use_guard
        # Per tool, how its approvals wait: {"expires_in": seconds, "on_expire": Escalate(...)}.
        self.approvals = approval_options(approvals)
        self.sleep = sleep
        self.rng = random.Random(seed)

    # -- what to run ---------------------------------------------------------------------------

    def _calls(self, state: WorkingContext) -> list[_Call]:
        step = next_step(state)
        if step is not None:
            return [_Call(str(step.get("tool")), dict(step.get("args") or {}), step=step)]
        messages = state.get("messages") or []
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        for message in reversed(messages):
            if isinstance(message, AIMessage):
                return [_Call(c["name"], dict(c.get("args") or {}), call_id=c.get("id"))
                        for c in message.tool_calls if c.get("id") not in answered]
        return []

    def _timeout(self, name: str) -> float:
        if isinstance(self.timeout, Mapping):
            return float(self.timeout.get(name, 30.0))
        return float(self.timeout)

    # -- running one call ----------------------------------------------------------------------

    def _injected(self, tool: BaseTool) -> set[str]:
        """Arguments the tool takes that the model does not see (InjectedToolArg)."""
        full = set(fields(tool.get_input_schema()))
        return full - set(fields(tool.tool_call_schema))

    def _attempts(self, tool: BaseTool, payload: dict[str, Any]) -> Any:
        """The call with its timeout and retries; one ledger entry covers all attempts."""
        timeout = self._timeout(tool.name)
        for attempt in range(1, self.retry.attempts + 1):
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="steward-tool")
            try:
                # The run's context (its callbacks: audit, tracing) goes with the call.
                run_id = uuid.uuid4()
                config: RunnableConfig = {"run_id": run_id}
                future = pool.submit(contextvars.copy_context().run, tool.invoke, payload,
                                     config)
                try:
                    return future.result(timeout=timeout)
                except concurrent.futures.TimeoutError:
                    error = TimeoutError(f"tool {tool.name!r} did not answer within "
                                         f"{timeout:g}s")
                    _gave_up(run_id, error)
                    raise error from None
            except self.retry.on:
                if attempt == self.retry.attempts:
                    raise
                self.sleep(self.retry.delay(attempt, self.rng))
            finally:
                pool.shutdown(wait=False)
        raise AssertionError("unreachable")

    def _run(self, call: _Call) -> _Outcome:
        tool = self.tools.get(call.tool)
        if tool is None:
            return _Outcome(error=_error("unknown_tool", f"no tool named {call.tool!r}; known: "
                                         f"{sorted(self.tools)}", call))
        args, problem = checked_args(tool, call.args)
        if problem is not None:
            return _Outcome(error=_error("invalid_args", problem, call))
        approved: dict[str, Any] | None = None
        if self.use_guard:
            try:
                decision = guard(call.tool, args, editable=fits(tool),
                                 **self.approvals.get(call.tool, {}))
            except PolicyDenied as exc:
                return _Outcome(error=_error("denied", str(exc), call))
            if decision.approval is not None:
                approved = {**decision.approval.to_dict(), "action": call.tool,
                            "step": call.step.get("id") if call.step else None}
            if decision.args is not None and decision.args != args:
                # An approver edited the arguments: they must fit the tool as well.
                args, problem = checked_args(tool, decision.args)
                if problem is not None:
                    return _Outcome(error=_error("invalid_args", f"as edited: {problem}", call),
                                    approval=approved)
        injected = self._injected(tool)
        ctx = current("ToolExecutor", need_principal=False)

        def invoke(arguments: dict[str, Any], idempotency_key: str = "") -> Any:
            payload = dict(arguments)
            if "idempotency_key" in injected:
                payload["idempotency_key"] = idempotency_key
            if "principal" in injected:
                payload["principal"] = ctx.acting()
            return self._attempts(tool, payload)

        try:
            if call.tool in self.read_only:
                result = invoke(args)
            else:
                # One key per step (or model tool call), not per attempt: the validate node may
                # send a timed-out step round again, and the call that timed out may have
                # gone through; the other system sees the same key and drops the repeat.
                unit = call.step.get("id") if call.step else call.call_id
                key = call_key(ctx.thread_id, unit, call.tool, args)
                result = ledgered(call.tool, invoke)(args, idempotency_key=key)
        except TimeoutError as exc:
            return _Outcome(error=_error("timeout", str(exc), call), approval=approved)
        except ConfigError:
            raise
        except Exception as exc:
            return _Outcome(error=_error("tool_error", f"{type(exc).__name__}: {exc}", call),
                            approval=approved)
        problem = _typed(tool, result)
        if problem is not None:
            return _Outcome(error=_error("invalid_result", problem, call), approval=approved)
        return _Outcome(result=result, approval=approved)

    # -- the node ------------------------------------------------------------------------------

    def __call__(self, state: WorkingContext) -> dict[str, Any]:
        steps: list[Step] = []
        messages: list[ToolMessage] = []
        errors: list[ErrorRecord] = []
        approvals: list[dict[str, Any]] = []
        for call in self._calls(state):
            outcome = self._run(call)
            if call.step is not None:
                step: Step = {"id": call.step["id"],
                              "attempts": int(call.step.get("attempts") or 0) + 1}
                if outcome.error is None:
                    step |= {"status": "done", "result": outcome.result, "error": None}
                else:
                    step |= {"error": outcome.error}  # status: the validate node decides
                if outcome.approval is not None:
                    step["approved_by"] = list(outcome.approval["approvers"])
                steps.append(step)
            if outcome.approval is not None:
                approvals.append(outcome.approval)
            if call.call_id is not None:
                content = (outcome.result if outcome.error is None
                           else f"error ({outcome.error['type']}): {outcome.error['message']}")
                messages.append(ToolMessage(
                    content=content if isinstance(content, str) else repr(content),
                    tool_call_id=call.call_id, name=call.tool,
                    status="success" if outcome.error is None else "error"))
            if outcome.error is not None:
                errors.append(outcome.error)
        update: dict[str, Any] = {}
        if steps:
            update["plan"] = steps
        if messages:
            update["messages"] = messages
        if errors:
            update["errors"] = errors
        if approvals:
            update["approvals"] = approvals
        return update
