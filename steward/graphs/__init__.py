"""Prebuilt graphs: the agent loop (``build_agent_graph``) and the example workflows.

``WORKFLOWS`` names the workflows ``steward run`` knows: how to build each graph, the Cedar
policy it runs under, an example input, and the input fields a request must name.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steward.graphs.access import access_policy, build_access_graph
from steward.graphs.agent import build_agent_graph
from steward.graphs.close import build_close_graph, close_policy
from steward.graphs.refund_demo import build_refund_demo, refund_policy
from steward.graphs.research import build_research_graph, research_policy
from steward.guardrails.policy import Policy

__all__ = ["WORKFLOWS", "Workflow", "build_agent_graph"]


@dataclass(frozen=True)
class Workflow:
    build: Callable[..., Any]  # -> a StateGraph, not compiled; agent graphs take model=
    policy: Callable[[], Policy]
    defaults: dict[str, Any] = field(default_factory=dict)  # an example input, the rest filled in
    inputs_key: str | None = None  # agent graphs take their request under state["inputs"]
    required: tuple[str, ...] = ()  # what a given input must name (the example's others default)

    @property
    def plans(self) -> bool:
        """Whether a chat model can plan it (the agent graphs), or its flow is fixed."""
        return self.inputs_key is not None

    def missing(self, given: dict[str, Any]) -> list[str]:
        """The required fields a given input leaves out."""
        return [name for name in self.required if name not in given]

    def input(self, given: dict[str, Any], name: str = "") -> dict[str, Any]:
        merged = {**self.defaults, **given}
        if not self.inputs_key:
            return merged
        return {self.inputs_key: merged, "goal": f"{name}: {json.dumps(merged, sort_keys=True)}"}


WORKFLOWS: dict[str, Workflow] = {
    "refund": Workflow(build_refund_demo, refund_policy,
                       {"order_id": "98765", "amount": "120.00"},
                       required=("order_id", "amount")),
    "access": Workflow(build_access_graph, access_policy,
                       {"user_id": "dana", "system": "billing", "role": "read", "days": 14},
                       inputs_key="inputs", required=("user_id",)),
    "close": Workflow(build_close_graph, close_policy, {"period": "2026-10"},
                      inputs_key="inputs", required=("period",)),
    "research": Workflow(build_research_graph, research_policy,
                         {"topic": "vendor:acme-analytics"}, inputs_key="inputs",
                         required=("topic",)),
}
