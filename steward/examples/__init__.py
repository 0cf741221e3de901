"""The example business workflows, built on the library's graphs, and their registry.

- ``refund``: the customer refund of ``steward demo`` (a manager approves above 100.00);
- ``access``: IT access provisioning (least privilege, grants that expire);
- ``close``: the month-end close (several approvers, over days);
- ``research``: a team of agents sharing one working context;
- ``records``: the small local systems of record their tools act on;
- ``faults``: the fault plans those systems consult before acting (``steward eval`` installs
  one: transient errors, timeouts, outages, crashes; without one they act as ever);
- ``chat``: the refund chat, a LangChain agent (``create_agent``) under
  ``GuardedToolsMiddleware``, for chat frontends (not in ``WORKFLOWS``: it takes messages, and
  needs the ``agents`` extra, imported only when it is built).

``WORKFLOWS`` names the workflows ``steward run`` and the LangGraph server (``steward.server``)
know: how to build each graph, the Cedar policy it runs under, an example input, and the input
fields a request must name. ``THREAD_ROLES`` grants the roles their policies name access to
other members' threads (the default of ``--thread-roles`` and ``$STEWARD_THREAD_ROLES``).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steward.examples.access import access_policy, build_access_graph
from steward.examples.close import build_close_graph, close_policy
from steward.examples.refund import build_refund_graph, refund_policy
from steward.examples.research import build_research_graph, research_policy
from steward.guardrails.policy import Policy

__all__ = ["THREAD_ROLES", "WORKFLOWS", "Workflow"]

# Auditors read every thread of their tenant, ops may erase. Approvers need no grant: the
# approver's reach lets them read a thread waiting on them and resume it with their vote.
THREAD_ROLES = "auditor=read,ops=admin"


@dataclass(frozen=True)
class Workflow:
    """One example workflow as ``steward run`` and the server know it."""

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
    "refund": Workflow(build_refund_graph, refund_policy,
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
