"""The smallest refund workflow that shows what Steward is for.

Alice (support) asks for a refund. Each risky step asks the runtime's Cedar policy first
(``steward.guard``): verifying the order is allowed; issuing a refund above 100.00 is allowed
only once a manager approves, so the thread pauses with an approval request. Bob (manager)
resumes it later, from another process, with ``Command(resume={"decision": "approve", ...})``;
the refund goes out through a (local) payment provider as an effect (``@steward.effect``), so
however often the node runs -- after a crash, say -- it is paid once; the thread remembers who
asked, who approved and what was done.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import signal
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from steward.guardrails.guard import guard
from steward.guardrails.policy import Policy
from steward.identity import principal_from_config
from steward.nodes.effects import effect

# Who may do what, in Cedar (see steward/guardrails/policy.py for the entity model).
REFUND_POLICY = """
@id("same-tenant")
permit (principal, action, resource)
when { principal.tenant == context.thread.tenant };

@id("refund-needs-manager")
@approval("manager")
@reason("refunds above 100.00 need a manager's approval")
forbid (principal, action == Action::"issue_refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };

@id("refund-cap")
@reason("refunds on one thread add up to at most 500.00")
forbid (principal, action == Action::"issue_refund", resource)
when { context.cumulative.amount.greaterThan(decimal("500.00")) };

@id("verify-first")
@reason("the order must be verified before it is refunded")
forbid (principal, action == Action::"issue_refund", resource)
unless { context.history has verify_order && context.history.verify_order.succeeded > 0 };
"""


def refund_policy() -> Policy:
    return Policy.from_cedar(REFUND_POLICY)


class RefundState(TypedDict, total=False):
    order_id: str
    amount: str
    requested_by: str
    approved_by: str
    comment: str
    receipt: str
    events: Annotated[list[str], operator.add]


def _actor() -> str:
    principal = principal_from_config(get_config())
    return principal.id if principal else "anonymous"


def verify_order(state: RefundState) -> RefundState:
    guard("verify_order", {"order_id": state["order_id"]})
    return {
        "requested_by": _actor(),
        "events": [f"order {state['order_id']} verified: ${state['amount']} paid by card"],
    }


def payments_path() -> Path:
    """The demo's payment provider: a small SQLite "system of record" (``$STEWARD_DEMO_LEDGER``,
    default ``steward-demo-payments.db``) that, like a real provider, drops a repeated
    idempotency key."""
    return Path(os.environ.get("STEWARD_DEMO_LEDGER", "steward-demo-payments.db"))


def payments(order_id: str) -> list[tuple[str, str, str]]:
    """The refunds the provider executed for an order: (transaction, amount, key)."""
    with contextlib.closing(sqlite3.connect(payments_path())) as conn:
        conn.execute(_PAYMENTS)
        return conn.execute("SELECT txn, amount, idempotency_key FROM refunds WHERE order_id = ? "
                            "ORDER BY rowid", (order_id,)).fetchall()


_PAYMENTS = ("CREATE TABLE IF NOT EXISTS refunds (txn TEXT PRIMARY KEY, order_id TEXT, amount "
             "TEXT, idempotency_key TEXT UNIQUE)")


@effect(name="demo.pay_refund")
def pay_refund(order_id: str, amount: str, *, idempotency_key: str = "") -> str:
    """Refund through the payment provider; runs once per call site, whatever re-runs."""
    txn = "TXN-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:10].upper()
    with contextlib.closing(sqlite3.connect(payments_path())) as conn, conn:
        conn.execute(_PAYMENTS)
        conn.execute("INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?)",
                     (txn, order_id, amount, idempotency_key))
    return txn


def issue_refund(state: RefundState) -> RefundState:
    decision = guard("issue_refund", {"order_id": state["order_id"], "amount": state["amount"]},
                     resource=("Order", state["order_id"]))
    approval = decision.approval
    txn = pay_refund(state["order_id"], state["amount"])
    if os.environ.get("STEWARD_DEMO_CRASH") == "after-refund":
        # The demo's simulated crash: the refund went out, the node has not finished.
        os.kill(os.getpid(), signal.SIGKILL)
    events = [f"allowed by {', '.join(decision.policy_ids)}"]
    if approval is not None:
        events.append(f"approved by {', '.join(approval.approvers)}: {approval.comment or ''}")
    events.append(f"refunded ${state['amount']} as {txn}")
    return {"receipt": txn, "events": events,
            "approved_by": ", ".join(approval.approvers) if approval else "",
            "comment": (approval.comment or "") if approval else ""}


def build_refund_demo() -> StateGraph[RefundState]:
    builder = StateGraph(RefundState)
    builder.add_node("verify_order", verify_order)
    builder.add_node("issue_refund", issue_refund)
    builder.add_edge(START, "verify_order")
    builder.add_edge("verify_order", "issue_refund")
    builder.add_edge("issue_refund", END)
    return builder


def compile_refund_demo(checkpointer: Any, store: Any = None) -> CompiledStateGraph[Any]:
    return build_refund_demo().compile(checkpointer=checkpointer, store=store)
