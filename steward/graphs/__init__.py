"""Prebuilt graphs: the agent loop (``build_agent_graph``) and the example workflows.

``WORKFLOWS`` names the workflows ``steward run`` knows: how to build each graph, the Cedar
policy it runs under, and its default input.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steward.graphs.agent import build_agent_graph
from steward.graphs.refund_demo import build_refund_demo, refund_policy
from steward.guardrails.policy import Policy

__all__ = ["WORKFLOWS", "Workflow", "build_agent_graph"]


@dataclass(frozen=True)
class Workflow:
    build: Callable[[], Any]  # a StateGraph, not compiled
    policy: Callable[[], Policy]
    defaults: dict[str, Any] = field(default_factory=dict)


WORKFLOWS: dict[str, Workflow] = {
    "refund": Workflow(build_refund_demo, refund_policy,
                       {"order_id": "98765", "amount": "120.00"}),
}
