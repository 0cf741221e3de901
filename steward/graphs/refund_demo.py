"""The smallest refund workflow that shows what Steward is for.

Alice (support) asks for a refund; the graph verifies the order, then pauses for a manager's
approval with an ``interrupt``. Bob (manager) resumes it later, from another process, with
``Command(resume={"decision": "approve", "comment": ...})``; the refund is issued and the
thread remembers who asked, who approved and what was done. The full refund workflow with
Cedar policies and the effect ledger replaces it in later parts.
"""

from __future__ import annotations

import hashlib
import operator
from typing import Annotated, Any, TypedDict

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt

from steward.errors import ConfigError
from steward.identity import principal_from_config


class RefundState(TypedDict, total=False):
    order_id: str
    amount: str
    requested_by: str
    decision: str
    comment: str
    approved_by: str
    receipt: str
    events: Annotated[list[str], operator.add]


def _actor() -> str:
    principal = principal_from_config(get_config())
    return principal.id if principal else "anonymous"


def verify_order(state: RefundState) -> RefundState:
    return {
        "requested_by": _actor(),
        "events": [f"order {state['order_id']} verified: ${state['amount']} paid by card"],
    }


def manager_approval(state: RefundState) -> RefundState:
    answer: Any = interrupt({
        "type": "approval_request",
        "action": "issue_refund",
        "args": {"order_id": state["order_id"], "amount": state["amount"]},
        "requested_by": state["requested_by"],
        "required_roles": ["manager"],
        "reason": "refunds above $100 need a manager's approval",
    })
    if not isinstance(answer, dict) or answer.get("decision") not in ("approve", "reject"):
        raise ConfigError(
            "resume the refund with {'decision': 'approve' | 'reject', 'comment': str}, "
            f"got {answer!r}."
        )
    who = _actor()
    return {
        "decision": answer["decision"],
        "comment": str(answer.get("comment", "")),
        "approved_by": who,
        "events": [f"{answer['decision']}d by {who}: {answer.get('comment', '')}"],
    }


def issue_refund(state: RefundState) -> RefundState:
    if state.get("decision") != "approve":
        return {"receipt": "", "events": ["refund not issued"]}
    digest = hashlib.sha256(f"{state['order_id']}:{state['amount']}".encode()).hexdigest()
    txn = f"TXN-{digest[:10].upper()}"
    return {"receipt": txn, "events": [f"refunded ${state['amount']} as {txn}"]}


def build_refund_demo() -> StateGraph[RefundState]:
    builder = StateGraph(RefundState)
    builder.add_node("verify_order", verify_order)
    builder.add_node("manager_approval", manager_approval)
    builder.add_node("issue_refund", issue_refund)
    builder.add_edge(START, "verify_order")
    builder.add_edge("verify_order", "manager_approval")
    builder.add_edge("manager_approval", "issue_refund")
    builder.add_edge("issue_refund", END)
    return builder


def compile_refund_demo(checkpointer: Any, store: Any = None) -> CompiledStateGraph[Any]:
    return build_refund_demo().compile(checkpointer=checkpointer, store=store)
