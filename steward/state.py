"""The working context: what an agent thread knows, as LangGraph state.

Everything a long-running agent needs to pick up where it stopped -- days later, in another
process -- lives here and is checkpointed with the thread: the conversation, the plan, every
step with its arguments, result or typed error, the approvals it went through, and how it ended.
Plain TypedDicts of plain data, so that any serializer (strict msgpack included) stores them.

    messages   the conversation (LangGraph's add_messages)
    goal       what was asked, in words
    inputs     what was asked, as data (order id, amount, ...)
    plan       the steps, each {id, tool, args, reason, status, attempts, result, error,
               validated}; a node returns only the steps it changed (merged by id)
    approvals  every approval a step went through: {request_id, action, step, decision,
               approvers, comment, decided_at} (appended)
    errors     every typed error met on the way (appended)
    outcome    how it ended: {"status": "done" | "failed", "reason": ..., ...}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["ErrorRecord", "Step", "WorkingContext", "merge_steps", "next_step"]

StepStatus = Literal["pending", "done", "failed"]
ErrorType = Literal["unknown_tool", "invalid_args", "denied", "timeout", "tool_error",
                    "invalid_result", "invariant", "invalid_plan", "no_model"]


class ErrorRecord(TypedDict, total=False):
    type: ErrorType
    message: str
    step: str | None
    tool: str | None
    route: Literal["retry", "escalate", "fail"]
    at: float


class Step(TypedDict, total=False):
    id: str
    tool: str
    args: dict[str, Any]
    reason: str
    status: StepStatus
    attempts: int
    result: Any
    error: ErrorRecord | None
    approved_by: list[str]
    validated: bool


def merge_steps(left: list[Step] | None, right: list[Step] | None) -> list[Step]:
    """Steps by id: a changed step replaces its earlier self in place, a new one is appended."""
    merged = list(left or [])
    index = {s.get("id"): i for i, s in enumerate(merged)}
    for step in right or []:
        at = index.get(step.get("id"))
        if at is None:
            index[step.get("id")] = len(merged)
            merged.append(step)
        else:
            merged[at] = {**merged[at], **step}
    return merged


def _append(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    return [*(left or []), *(right or [])]


class WorkingContext(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    goal: str
    inputs: dict[str, Any]
    plan: Annotated[list[Step], merge_steps]
    approvals: Annotated[list[dict[str, Any]], _append]
    errors: Annotated[list[ErrorRecord], _append]
    outcome: dict[str, Any]


def next_step(state: WorkingContext) -> Step | None:
    """The first step still to do, or None."""
    for step in state.get("plan") or []:
        if step.get("status", "pending") == "pending":
            return step
    return None
