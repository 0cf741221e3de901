"""The plan node: turns the goal into typed steps, once per thread.

With a chat model (any LangChain chat model: ``init_chat_model("openai:gpt-4o-mini")``,
``ChatBedrockConverse(...)``), the model fills a pydantic ``Plan`` by structured output, and may
only choose among the tools the acting principal may use (those the runtime's policy does not
deny outright). What the model sees is trimmed to a token budget (the system prompt, and the
newest messages that fit), never the whole unbounded history. With no model, the workflow's
static plan is used, so that every example runs offline.

A plan that does not parse, names a tool that is not offered, or is empty, is a typed
``invalid_plan`` error and the run ends as failed -- nothing is executed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, ValidationError, create_model

from steward.context import current
from steward.errors import ConfigError
from steward.guardrails.policy import PolicyRequest, ThreadFacts
from steward.nodes.tools import _as_tool
from steward.state import ErrorRecord, Step, WorkingContext

__all__ = ["PlanStep", "Planner", "StaticPlan", "chat_model"]

StaticPlan = Sequence[Mapping[str, Any]] | Callable[[WorkingContext], Sequence[Mapping[str, Any]]]

SYSTEM = ("You plan the steps of a business task. Use only the tools listed, each with "
          "arguments that fit its schema, in the order they must run. Tools:\n{tools}")


class PlanStep(BaseModel):
    tool: str = Field(description="the name of one of the tools offered")
    args: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments")
    reason: str = Field(default="", description="why this step is needed")


def _plan_model(names: Sequence[str]) -> type[BaseModel]:
    """A Plan schema whose tool field only admits the offered tools."""
    tool_type: Any = Literal[tuple(names)] if names else str
    step = create_model("PlanStep", __base__=PlanStep, tool=(tool_type, ...))
    return create_model("Plan", steps=(list[step], Field(min_length=1)))  # type: ignore[valid-type]


def _fill(value: Any, inputs: Mapping[str, Any]) -> Any:
    """``"$name"`` in a static plan's arguments stands for ``inputs["name"]``."""
    if isinstance(value, str) and value.startswith("$") and value[1:] in inputs:
        return inputs[value[1:]]
    if isinstance(value, Mapping):
        return {k: _fill(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, inputs) for v in value]
    return value


_PROVIDERS = {
    "openai": ("langchain_openai", "ChatOpenAI", "openai"),
    "bedrock": ("langchain_aws", "ChatBedrockConverse", "bedrock"),
    "bedrock_converse": ("langchain_aws", "ChatBedrockConverse", "bedrock"),
}


def chat_model(spec: str, **options: Any) -> Any:
    """A chat model from ``"openai:gpt-4o-mini"`` or ``"bedrock:<model id>"`` (the providers'
    LangChain clients, installed with the ``openai`` / ``bedrock`` extras). Any LangChain chat
    model object can be given to the planner directly instead, e.g. one made by
    ``langchain.chat_models.init_chat_model``."""
    provider, _, name = spec.partition(":")
    if provider not in _PROVIDERS or not name:
        raise ConfigError(f"unknown model {spec!r}: use 'openai:<model>' or 'bedrock:<model id>',"
                          " or pass a LangChain chat model object.")
    module, cls, extra = _PROVIDERS[provider]
    try:
        client = getattr(__import__(module, fromlist=[cls]), cls)
    except ImportError as exc:
        raise ConfigError(f"model {spec!r} needs {module}: pip install "
                          f"'langgraph-steward[{extra}]'.") from exc
    return client(model=name, **options)


class Planner:
    def __init__(self, tools: Sequence[BaseTool | Callable[..., Any]], *, model: Any = None,
                 static_plan: StaticPlan | None = None, token_budget: int = 2000,
                 system_prompt: str = SYSTEM) -> None:
        if model is None and static_plan is None:
            raise ConfigError("Planner needs a chat model or a static plan (static_plan=[...] "
                              "or a function of the state).")
        if token_budget < 100:
            raise ConfigError(f"token_budget must be at least 100 tokens, got {token_budget}.")
        self.tools = {t.name: t for t in map(_as_tool, tools)}
        self.model = chat_model(model) if isinstance(model, str) else model
        self.static_plan = static_plan
        self.token_budget = token_budget
        self.system_prompt = system_prompt

    def _allowed(self) -> list[str]:
        """The tools the acting principal may use: not denied outright by the policy (rules
        about the arguments are left to the guard, when the arguments are known)."""
        try:
            ctx = current("Planner")
        except ConfigError:
            return sorted(self.tools)
        guardrails = ctx.runtime.guardrails
        thread = ThreadFacts(ctx.thread_id, ctx.person.tenant, ctx.person.id, ctx.metadata)
        return [name for name in sorted(self.tools) if not guardrails.decide(
            PolicyRequest(ctx.actor, name, {}, thread), strict=False).denied]

    def context(self, state: WorkingContext, names: Sequence[str]) -> list[BaseMessage]:
        """What the model is shown: the system prompt and the newest messages in budget."""
        described = "\n".join(f"- {n}: {self.tools[n].description} args="
                              f"{sorted(self.tools[n].args)}" for n in names)
        system = SystemMessage(self.system_prompt.format(tools=described))
        history: list[AnyMessage] = list(state.get("messages") or [])
        if not history and state.get("goal"):
            history = [HumanMessage(str(state["goal"]))]
        budget = self.token_budget - count_tokens_approximately([system])
        kept = trim_messages(history, max_tokens=max(budget, 1), strategy="last",
                             token_counter=count_tokens_approximately, start_on="human",
                             allow_partial=False) if history else []
        return [system, *kept]

    def _steps(self, state: WorkingContext) -> list[Mapping[str, Any]]:
        if self.model is None:
            plan = self.static_plan(state) if callable(self.static_plan) else self.static_plan
            inputs = state.get("inputs") or {}
            return [{**s, "args": _fill(dict(s.get("args") or {}), inputs)} for s in plan or []]
        names = self._allowed()
        if not names:
            raise ValueError("the policy allows this principal none of the tools")
        schema = _plan_model(names)
        answer = self.model.with_structured_output(schema).invoke(self.context(state, names))
        parsed = schema.model_validate(answer if not isinstance(answer, BaseModel)
                                       else answer.model_dump())
        return [s.model_dump() for s in parsed.steps]  # type: ignore[attr-defined]

    def __call__(self, state: WorkingContext) -> dict[str, Any]:
        if state.get("plan"):
            return {}  # planned already: a re-run does not plan again
        try:
            raw = self._steps(state)
            unknown = sorted({str(s.get("tool")) for s in raw} - set(self.tools))
            if unknown:
                raise ValueError(f"the plan names tools that are not offered: {unknown}")
            if not raw:
                raise ValueError("the plan has no steps")
        except (ValidationError, ValueError, TypeError) as exc:
            error: ErrorRecord = {"type": "invalid_plan", "message": str(exc)[:2000],
                                  "route": "fail", "at": time.time()}
            return {"errors": [error], "outcome": {"status": "failed", "at": time.time(),
                                                   "reason": f"no valid plan: {exc}"[:2000]}}
        steps: list[Step] = [{"id": f"s{i + 1}", "tool": str(s["tool"]),
                              "args": dict(s.get("args") or {}),
                              "reason": str(s.get("reason") or ""), "status": "pending",
                              "attempts": 0} for i, s in enumerate(raw)]
        return {"plan": steps}
