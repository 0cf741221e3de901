"""``build_agent_graph``: plan -> act (guard, effect ledger) -> validate, with the loop and the
exits, over the working context (``steward.state.WorkingContext``).

    START -> plan -> act -> validate -> act ... -> END
               \\-> END (no valid plan)   \\-> END (done, or failed with the reason recorded)

Guarding happens inside ``act``: each tool call asks the runtime's policy first (pausing for
approval where it says so), and runs through the effect ledger. The result is a StateGraph, not
compiled, so that users can add their own nodes and edges before ``compile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from steward.nodes.plan import Planner, StaticPlan
from steward.nodes.tools import Retry, ToolExecutor
from steward.nodes.validate import Invariant, Validator
from steward.state import WorkingContext

__all__ = ["build_agent_graph"]


def _after_plan(state: WorkingContext) -> str:
    return END if state.get("outcome") else "act"


def build_agent_graph(tools: Sequence[BaseTool | Callable[..., Any]], *, model: Any = None,
                      static_plan: StaticPlan | None = None,
                      results: Mapping[str, type[BaseModel]] | None = None,
                      invariants: Sequence[Invariant] = (),
                      escalate_to: Iterable[str] | None = None, read_only: Iterable[str] = (),
                      timeout: float | Mapping[str, float] = 30.0, retry: Retry | None = None,
                      max_attempts: int = 2, token_budget: int = 2000,
                      approvals: Mapping[str, Mapping[str, Any]] | None = None,
                      ) -> StateGraph[WorkingContext]:
    """The agent loop over ``tools``: plan with ``model`` (or ``static_plan`` offline), run
    each step guarded and at most once, validate results (``results``: a pydantic model per
    tool) and business ``invariants``; ``escalate_to`` roles may approve a violation;
    ``approvals``: per tool, how long its approvals wait and what happens then
    (``{"post_close": {"expires_in": 86400, "on_expire": steward.Escalate(["cfo"])}}``)."""
    builder = StateGraph(WorkingContext)
    builder.add_node("plan", Planner(tools, model=model, static_plan=static_plan,
                                     token_budget=token_budget))
    builder.add_node("act", ToolExecutor(tools, timeout=timeout, retry=retry,
                                         read_only=read_only, approvals=approvals))
    builder.add_node("validate", Validator(results, invariants, max_attempts=max_attempts,
                                           escalate_to=escalate_to),
                     destinations=("act", END))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", _after_plan, ["act", END])
    builder.add_edge("act", "validate")
    return builder
