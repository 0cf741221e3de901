"""The node context: what Steward's calls inside a node (``steward.guard``,
``request_approval``, ``@effect``, tools, memory, ``add_subjects``) know of the run.

LangGraph hands every node its config through a context variable. ``rt.config(...)`` puts the
runtime in it under a key Steward owns (:data:`RUNTIME_KEY`); under the LangGraph server, the
graph factories of ``steward.server.runtime`` bind it to each graph. With the run's principal
and its place in the run (thread, task, checkpoint) that makes a :class:`NodeContext`. A call's
*site* (the task and the how-manieth guarded call of that task execution it is) is what makes
records idempotent when the node re-runs from its first line after an interrupt, a retry (of
LangGraph's ``RetryPolicy``: each attempt counts afresh) or a crash.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from langchain_core.runnables import RunnableConfig

from steward.errors import ConfigError
from steward.identity import Principal, agent_from_config, principal_from_config
from steward.storage.ops import Op

if TYPE_CHECKING:
    from steward.audit.log import AuditLog
    from steward.checkpointers.saver import StewardSaver
    from steward.guardrails.guard import Guardrails
    from steward.guardrails.redact import Redactor

T = TypeVar("T")

_COUNTERS = "__steward_counters"
_SCRATCHPAD = "__pregel_scratchpad"
RUNTIME_KEY = "__steward_runtime"  # config["configurable"][RUNTIME_KEY]: the NodeServices

# A node-level flow yields record operations (and user calls, ``UserCall``) and gets their
# results back; the sync and async calls differ only in how they run them.
Flow = Generator["Op[Any] | UserCall", Any, T]


class NodeServices(Protocol):
    """What node-level calls use of the runtime that runs the graph (``steward.Runtime``)."""

    checkpointer: StewardSaver
    guardrails: Guardrails
    audit: AuditLog
    redactor: Redactor


@dataclass
class NodeContext:
    runtime: NodeServices
    config: RunnableConfig
    principal: Principal | None  # None only where current(..., need_principal=False) allows
    thread_id: str
    task_ns: str
    checkpoint_id: str
    metadata: dict[str, Any]
    agent: Principal | None = None  # the team member's identity the node runs as, if any

    attempt: int = 1  # LangGraph's node_attempt: a RetryPolicy's retry counts afresh

    @property
    def _counters(self) -> dict[str, int]:
        """This task execution's counters. A retry runs the node again from its first line
        under the same config, so the counters start again with each attempt: the retry's
        calls are the same call sites as the failed attempt's, and the ledger replays what
        that attempt recorded instead of acting again."""
        conf = self.config["configurable"]
        counters: dict[str, int] | None = conf.get(_COUNTERS)
        if counters is None or counters.get("attempt", 1) != self.attempt:
            counters = {"attempt": self.attempt, "site": 0, "position": 0, "effect": 0}
            conf[_COUNTERS] = counters
        return counters

    def next_effect(self) -> int:
        """The how-manieth side effect of this task execution this call is (0, 1, ...)."""
        counters = self._counters
        counters["effect"] += 1
        return counters["effect"] - 1

    def next_site(self) -> int:
        """The how-manieth guarded call of this task execution this is (0, 1, ...)."""
        counters = self._counters
        counters["site"] += 1
        return counters["site"] - 1

    def next_position(self) -> int:
        """The how-manieth resume value Steward's calls consume in this task execution."""
        counters = self._counters
        counters["position"] += 1
        return counters["position"] - 1

    def audit(self, kind: str, payload: dict[str, Any]) -> None:
        """Gather an audit event of this node (written with the task's writes)."""
        md = self.config.get("metadata") or {}
        step = md.get("langgraph_step")
        if self.agent is not None:
            payload = {**payload, "on_behalf_of": self.person.id}
        self.runtime.audit.record(self.thread_id, kind, payload,
                                  principal=self.agent or self.principal,
                                  node=md.get("langgraph_node"),
                                  step=int(step) if step is not None else None,
                                  checkpoint_ns=self.task_ns)

    @property
    def actor(self) -> Principal:
        """Whom the policy judges: the agent the node runs as (a team member), else the run's
        principal (``current`` made sure there is one)."""
        if self.agent is not None:
            return self.agent
        assert self.principal is not None
        return self.principal

    @property
    def person(self) -> Principal:
        """On whose behalf the run acts: it asks for approvals (and may not approve them), and
        it is who votes when a run resumes."""
        assert self.principal is not None
        return self.principal

    def acting(self) -> dict[str, Any] | None:
        """The identity handed to tools: the actor, with whom it acts for when it is an
        agent."""
        if self.principal is None:
            return None
        if self.agent is None:
            return self.principal.to_dict()
        return {**self.agent.to_dict(), "on_behalf_of": self.principal.id}

    def extend_to(self, config: RunnableConfig) -> None:
        """Steward's calls made under ``config`` -- a copy of this task's config taken before
        this execution counted anything, such as the one a LangChain tool node runs its tool
        with -- count on from this execution's calls (they are part of it), so that an effect
        inside the tool does not take the call site of one around it."""
        config.setdefault("configurable", {})[_COUNTERS] = self._counters

    def peek_position(self) -> int:
        return self._counters["position"]

    def resumes_so_far(self) -> int:
        """How many resume values the task holds (LangGraph's scratchpad), to tell a value
        handed over for the first time from one replayed because the node re-runs."""
        scratchpad = self.config["configurable"].get(_SCRATCHPAD)
        return len(getattr(scratchpad, "resume", None) or [])


def current(call: str, *, need_principal: bool = True) -> NodeContext:
    from langgraph.config import get_config
    from langgraph.runtime import get_runtime

    try:
        config = get_config()
        info = get_runtime().execution_info
    except RuntimeError as exc:
        raise ConfigError(f"steward.{call} runs inside a node of a graph, during a run; call it "
                          "from a node function.") from exc
    conf = config.get("configurable") or {}
    runtime: NodeServices | None = conf.get(RUNTIME_KEY)
    if runtime is None or info is None:
        raise ConfigError(f"steward.{call} needs a run of a Steward runtime: compile with "
                          "builder.compile(checkpointer=rt.checkpointer) and run with "
                          "rt.config(thread_id, principal) (under the LangGraph server, the "
                          "graph factories of steward.server.runtime bind the runtime).")
    principal = principal_from_config(config)
    if principal is None and need_principal:
        raise ConfigError(f"steward.{call} needs to know who acts: run the graph with "
                          "rt.config(thread_id, principal).")
    metadata = {k: v for k, v in (config.get("metadata") or {}).items()
                if not k.startswith(("langgraph_", "ls_")) and k not in ("thread_id",
                                                                       "checkpoint_ns")}
    return NodeContext(runtime, config, principal, info.thread_id or conf["thread_id"],
                       info.checkpoint_ns, info.checkpoint_id, metadata,
                       agent_from_config(config, principal), info.node_attempt)


@dataclass(frozen=True)
class UserCall:
    """A flow step that runs the user's code (an effect's function, a hook); its result, or
    its exception, goes back into the flow."""

    fn: Callable[[], Any]


def run_sync(ctx: NodeContext, flow: Flow[T]) -> T:
    """Run a flow: each operation in its own transaction, each user call as it comes; an
    exception from either is thrown into the flow, which may record it."""
    driver = ctx.runtime.checkpointer.driver
    try:
        step = next(flow)
        while True:
            try:
                value = step.fn() if isinstance(step, UserCall) else driver.run(step,
                                                                                write=True)
            except BaseException as exc:
                step = flow.throw(exc)
                continue
            step = flow.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(ctx: NodeContext, flow: Flow[T]) -> T:
    """The async twin of :func:`run_sync` (user calls may return awaitables)."""
    driver = ctx.runtime.checkpointer.driver
    try:
        step = next(flow)
        while True:
            try:
                if isinstance(step, UserCall):
                    value = step.fn()
                    if inspect.isawaitable(value):
                        value = await value
                else:
                    value = await driver.arun(step, write=True)
            except BaseException as exc:
                step = flow.throw(exc)
                continue
            step = flow.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


def call(fn: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> Flow[T]:
    """Yield one record operation from a flow and return its result."""
    result: T = yield fn(*args, **kwargs)
    return result
