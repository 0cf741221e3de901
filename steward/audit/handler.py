"""``AuditCallbackHandler``: every transition of a run becomes an audit event and a span.

Attached by ``rt.config(...)`` (or by hand: ``AuditCallbackHandler(rt.audit, thread_id,
principal)``). Events: the run's start (with its workflow's name, when the run names one) or
resume (with who resumed and the value), and its end (with the outcome its final state
records) or error; each node's start, end, error and interrupt; each model call (model, token
usage, cost where a price is given); each tool call, result and error. Steward's own nodes add
guard decisions, approval requests, votes and outcomes, and effect-ledger hits
(``rt.audit.record``). Events are gathered in memory and written with the thread's next write
(see ``log``).

Spans follow OpenTelemetry's GenAI conventions: ``invoke_agent`` for the run, one per node,
``chat <model>`` for model calls (``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens``), ``execute_tool <name>`` for tools (``gen_ai.tool.name``,
``gen_ai.tool.call.id``), each with ``steward.thread_id``, ``steward.principal.id`` and
``steward.tenant``. Only ``opentelemetry-api`` is used: without a tracer provider configured (the
``otel`` extra) no span is even started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langgraph.errors import GraphInterrupt
from langgraph.types import Command
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

if TYPE_CHECKING:
    from steward.audit.log import AuditLog
    from steward.identity import Principal

__all__ = ["AuditCallbackHandler"]

_tracer = trace.get_tracer("steward")


def _tracing() -> bool:
    """Whether an OpenTelemetry SDK (or another real provider) is set up to take spans."""
    return not isinstance(trace.get_tracer_provider(),
                          (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


@dataclass
class _Run:
    kind: str  # "run", "node", "model", "tool"
    name: str
    started: float
    span: Span
    step: int | None = None
    checkpoint_ns: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _summary(value: Any) -> Any:
    """What an event keeps of inputs and outputs: the keys of a state, a message's text."""
    if isinstance(value, Mapping):
        return {"keys": sorted(str(k) for k in value)}
    return value


def _workflow(metadata: Mapping[str, Any], name: str) -> str | None:
    """The workflow a run belongs to, for reports: ``steward run``'s ``workflow``, the
    LangGraph server's (and ``rt.submit``'s) ``graph_id``, else the compiled graph's own name
    (``compile(name=...)``) when it has one."""
    found = metadata.get("workflow") or metadata.get("graph_id") or (
        name if name not in ("", "LangGraph") else None)
    return str(found)[:200] if found else None


def _outcome(value: Any) -> dict[str, str] | None:
    """How a run's final state says it ended (Steward's working context and the example
    workflows keep ``outcome = {"status": ..., "reason": ...}``), for reports."""
    outcome = value.get("outcome") if isinstance(value, Mapping) else None
    if not isinstance(outcome, Mapping) or outcome.get("status") is None:
        return None
    out = {"status": str(outcome["status"])[:100]}
    if outcome.get("reason"):
        out["reason"] = str(outcome["reason"])[:500]
    return out


def _usage(response: LLMResult) -> tuple[int | None, int | None, str | None]:
    inputs = outputs = None
    model = None
    for generations in response.generations:
        for gen in generations:
            message = getattr(gen, "message", None)
            usage = getattr(message, "usage_metadata", None) or {}
            if usage:
                inputs = (inputs or 0) + int(usage.get("input_tokens") or 0)
                outputs = (outputs or 0) + int(usage.get("output_tokens") or 0)
            meta = getattr(message, "response_metadata", None) or {}
            model = model or meta.get("model_name") or meta.get("model_id") or meta.get("model")
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    if inputs is None and token_usage:
        inputs = token_usage.get("prompt_tokens")
        outputs = token_usage.get("completion_tokens")
    return inputs, outputs, model


class AuditCallbackHandler(BaseCallbackHandler):
    """Audit events and spans for one thread's runs (see the module docstring).

    ``prices``: per model name, (input, output) price per 1,000 tokens, for the cost of model
    calls; without a price the cost is left out."""

    run_inline = True  # gathering is cheap and order matters: no thread pool in async runs
    raise_error = False  # auditing never breaks a run; a failed write surfaces in the saver

    def __init__(self, audit: AuditLog, thread_id: str, principal: Principal | None, *,
                 prices: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.audit = audit
        self.thread_id = thread_id
        self.principal = principal
        self.prices = dict(prices or {})
        self._runs: dict[UUID, _Run] = {}
        self._root: UUID | None = None
        self._waits: list[str | None] = []  # interrupts raised in the current run
        self._tasks: set[asyncio.Task[None]] = set()
        self._opening: tuple[str, _Run, UUID, dict[str, Any]] | None = None
        self._root_id: str | None = None
        # Asked once per handler (rt.config makes one per run): a provider set up later is
        # used from the next run on.
        self._trace = _tracing()

    # -- helpers ---------------------------------------------------------------------------------

    def _attributes(self) -> dict[str, str]:
        out = {"steward.thread_id": self.thread_id}
        if self.principal is not None:
            out |= {"steward.principal.id": self.principal.id,
                    "steward.tenant": self.principal.tenant}
        return out

    def _start(self, run_id: UUID, parent: UUID | None, kind: str, name: str,
               span_name: str, attributes: Mapping[str, Any], **extra: Any) -> _Run:
        span: Span = trace.INVALID_SPAN
        if self._trace:
            parent_run = self._runs.get(parent) if parent is not None else None
            ctx = trace.set_span_in_context(parent_run.span) if parent_run \
                else otel_context.Context()
            span = _tracer.start_span(span_name, context=ctx,
                                      attributes={**self._attributes(), **attributes})
        run = _Run(kind, name, time.time(), span, **extra)
        self._runs[run_id] = run
        return run

    def _emit(self, kind: str, run: _Run | None, run_id: UUID, payload: Mapping[str, Any],
              *, duration: float | None = None, redact: bool = True) -> None:
        self.audit.record(self.thread_id, kind, payload, principal=self.principal, redact=redact,
                          run_id=self._root_id or str(run_id),
                          node=run.name if run and run.kind == "node" else
                          run.extra.get("node") if run else None,
                          step=run.step if run else None,
                          checkpoint_ns=run.checkpoint_ns if run else None, duration=duration)

    def _open(self) -> None:
        """Write the held-back start (or resume) of the run."""
        if self._opening is not None:
            kind, run, run_id, payload = self._opening
            self._opening = None
            self._emit(kind, run, run_id, payload, redact=kind == "resume")

    def _flush(self) -> None:
        """Write the run's last events when it ends, unless a run of this process still holds
        the thread's lease: its release writes them, in its own transaction. So the order of
        this handler and the lease's in a config does not matter."""
        if self.audit.held(self.thread_id):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.audit.flush(self.thread_id)
            return
        # On an event loop (async runs, the LangGraph server): never block it.
        task = loop.create_task(self.audit.aflush(self.thread_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _end(self, run_id: UUID, error: BaseException | None = None) -> _Run | None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            if error is not None and not isinstance(error, GraphInterrupt):
                run.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))
                run.span.record_exception(error)
            run.span.end()
        return run

    # -- chains: the run and its nodes -----------------------------------------------------------

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        md = metadata or {}
        name = str(kwargs.get("name") or "")
        # The run: the first chain this handler sees (under the LangGraph server the graph's
        # run has a parent of the server's own).
        if parent_run_id is None or (self._root is None and not md.get("langgraph_node")):
            self._root, self._root_id = run_id, str(run_id)
            self.audit.runs[self.thread_id] = self._root_id
            run = self._start(run_id, None, "run", name or "graph", f"invoke_agent {name}",
                              {"gen_ai.operation.name": "invoke_agent",
                               "gen_ai.agent.name": name})
            # Held back until the run gets going (its first node, or its end): a run refused
            # before that (ThreadBusy, ThreadAccessDenied from the lease) leaves no event.
            if isinstance(inputs, Command):
                self._opening = ("resume", run, run_id, {
                    "resume": inputs.resume, "goto": str(inputs.goto or "") or None})
            else:
                start: dict[str, Any] = {"input": _summary(inputs)}
                workflow = _workflow(md, name)
                if workflow is not None:
                    start["workflow"] = workflow
                self._opening = ("run_start", run, run_id, start)
            return
        node = md.get("langgraph_node")
        if node is not None and name == node and parent_run_id in self._runs:
            step = md.get("langgraph_step")
            run = self._start(run_id, parent_run_id, "node", node, f"node {node}",
                              {"steward.node": node, "steward.step": step or 0},
                              step=int(step) if step is not None else None,
                              checkpoint_ns=md.get("langgraph_checkpoint_ns"))
            self._open()
            self._emit("node_start", run, run_id, {"input": _summary(inputs)},
                       redact=isinstance(inputs, Mapping) is False)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        run = self._end(run_id)
        if run is None:
            return
        duration = time.time() - run.started
        if run.kind == "node":
            self._emit("node_end", run, run_id, {"output": _summary(outputs)}, duration=duration,
                       redact=isinstance(outputs, Mapping) is False)
        elif run.kind == "run":
            self._open()
            if self._waits:  # a node paused: the run ends waiting, not done
                self._emit("run_paused", run, run_id, {"interrupts": self._waits},
                           duration=duration)
                self._waits = []
            else:
                end: dict[str, Any] = {"output": _summary(outputs)}
                outcome = _outcome(outputs)
                if outcome is not None:
                    end["outcome"] = outcome
                self._emit("run_end", run, run_id, end, duration=duration)
            self._root = self._root_id = None
            self._flush()

    def on_chain_error(self, error: BaseException, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        run = self._end(run_id, error)
        if run is None:
            return
        duration = time.time() - run.started
        if isinstance(error, GraphInterrupt):
            if run.kind == "node":
                found = error.args[0] if error.args else []
                values = [getattr(i, "value", i) for i in found]
                self._waits += [getattr(i, "id", None) for i in found]
                self._emit("interrupt", run, run_id, {"interrupts": values}, duration=duration)
            elif run.kind == "run":
                self._open()
                self._emit("run_paused", run, run_id, {}, duration=duration)
                self._root = self._root_id = None
                self._flush()
            return
        what = {"error": type(error).__name__, "message": str(error)}
        if run.kind == "run":
            self._open()
        self._emit("node_error" if run.kind == "node" else "run_error", run, run_id, what,
                   duration=duration)
        if run.kind == "run":
            self._root = self._root_id = None
            self._flush()

    # -- models ----------------------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        params = kwargs.get("invocation_params") or {}
        model = str(params.get("model") or params.get("model_name") or params.get("model_id")
                    or (metadata or {}).get("ls_model_name") or "model")
        provider = (metadata or {}).get("ls_provider")
        parent = self._runs.get(parent_run_id) if parent_run_id else None
        self._start(run_id, parent_run_id, "model", model, f"chat {model}",
                    {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                     **({"gen_ai.provider.name": provider} if provider else {})},
                    step=parent.step if parent else None,
                    extra={"node": parent.name if parent else None, "provider": provider})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID,
                   parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is None:
            return
        inputs, outputs, model = _usage(response)
        payload: dict[str, Any] = {"model": model or run.name, "input_tokens": inputs,
                                   "output_tokens": outputs}
        price = self.prices.get(str(model or run.name))
        if price is not None and inputs is not None and outputs is not None:
            payload["cost"] = round(inputs / 1000 * price[0] + outputs / 1000 * price[1], 8)
        if inputs is not None:
            run.span.set_attribute("gen_ai.usage.input_tokens", inputs)
        if outputs is not None:
            run.span.set_attribute("gen_ai.usage.output_tokens", outputs)
        if model:
            run.span.set_attribute("gen_ai.response.model", str(model))
        self._end(run_id)
        self._emit("model_call", run, run_id, payload, duration=time.time() - run.started)

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        run = self._end(run_id, error)
        if run is not None:
            self._emit("model_error", run, run_id, {"model": run.name,
                                                    "error": type(error).__name__,
                                                    "message": str(error)},
                       duration=time.time() - run.started)

    # -- tools -----------------------------------------------------------------------------------

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      run_id: UUID, parent_run_id: UUID | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        parent = self._nearest_node(parent_run_id)
        run = self._start(run_id, parent_run_id, "tool", name, f"execute_tool {name}",
                          {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                           **({"gen_ai.tool.call.id": kwargs["tool_call_id"]}
                              if kwargs.get("tool_call_id") else {})},
                          step=parent.step if parent else None,
                          extra={"node": parent.name if parent else None})
        self._emit("tool_call", run, run_id, {"tool": name,
                                              "args": inputs if inputs is not None
                                              else input_str})

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                    **kwargs: Any) -> None:
        run = self._end(run_id)
        if run is not None:
            self._emit("tool_result", run, run_id, {"tool": run.name, "result": output},
                       duration=time.time() - run.started)

    def on_tool_error(self, error: BaseException, *, run_id: UUID,
                      parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        run = self._end(run_id, error)
        if run is not None:
            self._emit("tool_error", run, run_id, {"tool": run.name,
                                                   "error": type(error).__name__,
                                                   "message": str(error)},
                       duration=time.time() - run.started)

    def _nearest_node(self, run_id: UUID | None) -> _Run | None:
        run = self._runs.get(run_id) if run_id is not None else None
        if run is not None and run.kind != "node" and run.extra.get("node"):
            return _Run("node", run.extra["node"], run.started, run.span, run.step)
        return run if run is not None and run.kind == "node" else None
