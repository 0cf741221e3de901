"""Nodes that plan, act and validate, and the effect ledger under them.

- ``effects``: ``@steward.effect``, side effects that run once per call site;
- ``tools``: :class:`ToolExecutor`, guarded, ledgered, timed-out and retried tool calls;
- ``toolcall``: the pieces of one tool call that the executor and ``steward.agents`` share;
- ``plan``: :class:`Planner`, a typed plan from a chat model or a static workflow;
- ``validate``: :class:`Validator`, result models, business invariants and routing.
"""

from steward.nodes.effects import RETRY, effect
from steward.nodes.plan import Planner, PlanStep
from steward.nodes.tools import Retry, ToolExecutor, Transient
from steward.nodes.validate import Validator

__all__ = ["RETRY", "PlanStep", "Planner", "Retry", "ToolExecutor", "Transient", "Validator",
           "effect"]
