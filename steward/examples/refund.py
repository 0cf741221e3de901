"""The customer refund: the workflow that shows what Steward is for.

Alice (support) asks for a refund. The graph verifies the order, checks its payment, computes
what may be refunded, issues the refund, e-mails the receipt and closes the ticket; each step
asks the runtime's Cedar policy first (``steward.guard``). Issuing a refund above 100.00 is
allowed only once a manager approves, so the thread pauses with an approval request. Bob
(manager) resumes it later, from another process, with ``Command(resume={"decision":
"approve", ...})``. The refund, the e-mail and the ticket update are effects
(``@steward.effect``) on a small local system of record (``$STEWARD_DEMO_LEDGER``: orders,
refunds, an outbox, tickets), so however often a node runs -- after a crash, say -- each
happens once; the thread remembers who asked, who approved and what was done. Compiled with
``store=rt.store``, support also remembers each customer's past refunds and preferences across
threads (in the tenant's ``team:support`` memory space, erasable with ``rt.erase(email)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.config import get_config, get_store
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from steward.examples import faults
from steward.examples.records import system_of_record
from steward.guardrails.guard import guard
from steward.guardrails.policy import Policy
from steward.identity import principal_from_config
from steward.memory.space import team_space
from steward.memory.store import MemoryStore
from steward.memory.subjects import add_subjects
from steward.nodes.effects import effect
from steward.nodes.tools import Retry

__all__ = ["REFUND_POLICY", "RETRY", "add_order", "build_refund_graph", "compile_refund_graph",
           "outbox", "pay_refund", "payments", "refund_policy", "reset_records", "ticket"]

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
    amount: str  # asked for; compute_refund sets what is refunded
    requested_by: str
    customer: str
    paid: str
    approved_by: str
    comment: str
    receipt: str
    status: str  # "refunded", or why not
    outcome: dict[str, Any]  # how it ended: {"status": "refunded" | "rejected", "reason": ...}
    preference: str  # what the customer asked for, remembered for their next request
    events: Annotated[list[str], operator.add]


def _actor() -> str:
    principal = principal_from_config(get_config())
    return principal.id if principal else "anonymous"


def _memory(customer: str) -> tuple[Any, tuple[str, ...]] | None:
    """The runtime's memory store and the support team's space for one customer, when the
    graph was compiled with ``store=rt.store``."""
    store = get_store()
    principal = principal_from_config(get_config())
    if not isinstance(store, MemoryStore) or principal is None:
        return None  # another store (the LangGraph server's own) keeps no purposes
    return store, team_space(principal.tenant, "support", "customers",
                             customer.replace(".", "_"))


def verify_order(state: RefundState) -> RefundState:
    guard("verify_order", {"order_id": state["order_id"]})
    with _ledger() as conn:
        row = conn.execute("SELECT customer FROM orders WHERE order_id = ?",
                           (state["order_id"],)).fetchone()
    if row is None:
        return {"requested_by": _actor(), **_rejected(f"no such order {state['order_id']}")}
    add_subjects(row[0])  # the thread now holds the customer's data: erasing them reaches it
    events = [f"order {state['order_id']} verified for {row[0]}"]
    memory = _memory(row[0])
    if memory is not None:  # what support remembers of this customer, from earlier threads
        store, space = memory
        cases = store.search(space, filter={"kind": "case"}, limit=50)
        prefs = store.search(space, filter={"kind": "preference"}, limit=10)
        events.append(f"remembered: {len(cases)} past refund(s)"
                      + "".join(f"; {p.value.get('text')}" for p in prefs))
    return {"requested_by": _actor(), "customer": row[0], "events": events}


def check_payment(state: RefundState) -> RefundState:
    guard("check_payment", {"order_id": state["order_id"]})
    with _ledger() as conn:
        paid, method = conn.execute("SELECT paid, method FROM orders WHERE order_id = ?",
                                    (state["order_id"],)).fetchone()
    return {"paid": paid, "events": [f"payment checked: ${paid} paid by {method}"]}


def compute_refund(state: RefundState) -> RefundState:
    """What may be refunded: what was asked, up to what was paid and not refunded yet."""
    guard("compute_refund", {"order_id": state["order_id"], "amount": state["amount"]})
    refunded = sum((Decimal(a) for _, a, _ in payments(state["order_id"])), Decimal("0"))
    left = Decimal(state["paid"]) - refunded
    try:
        asked = Decimal(state["amount"])
    except ArithmeticError:
        return _rejected(f"amount {state['amount']!r} is not a number")
    if asked <= 0 or asked > left:
        return _rejected(f"{asked} asked, {left} refundable")
    return {"amount": f"{asked:.2f}", "events": [f"refund computed: ${asked:.2f} of ${left}"]}


def _rejected(reason: str) -> RefundState:
    """The run ends here: the refund cannot be made, and why."""
    return {"status": f"rejected: {reason}", "outcome": {"status": "rejected", "reason": reason},
            "events": [f"refund rejected: {reason}"]}


def _refundable(state: RefundState) -> str:
    return END if str(state.get("status", "")).startswith("rejected") else "next"


def payments_path() -> Path:
    """The demo's payment provider: a small SQLite "system of record" (``$STEWARD_DEMO_LEDGER``,
    default ``steward-demo-payments.db``) that, like a real provider, drops a repeated
    idempotency key."""
    return Path(os.environ.get("STEWARD_DEMO_LEDGER", "steward-demo-payments.db"))


def payments(order_id: str) -> list[tuple[str, str, str]]:
    """The refunds the provider executed for an order: (transaction, amount, key)."""
    with _ledger() as conn:
        return conn.execute("SELECT txn, amount, idempotency_key FROM refunds WHERE order_id = ? "
                            "ORDER BY rowid", (order_id,)).fetchall()


_PAYMENTS = ("CREATE TABLE IF NOT EXISTS refunds (txn TEXT PRIMARY KEY, order_id TEXT, amount "
             "TEXT, idempotency_key TEXT UNIQUE)")
_RECORDS = (
    _PAYMENTS,
    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, customer TEXT, paid TEXT, "
    "method TEXT)",
    "CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, recipient TEXT, subject TEXT, "
    "body TEXT)",
    "CREATE TABLE IF NOT EXISTS tickets (order_id TEXT PRIMARY KEY, status TEXT, note TEXT, "
    "key TEXT)",
)
_ORDERS = (("98765", "jane.doe@example.com", "120.00", "card"),
           ("24680", "jane.doe@example.com", "60.00", "card"),
           ("12345", "omar.reyes@example.com", "45.50", "card"),
           ("55555", "li.wei@example.com", "900.00", "bank transfer"))


def _ledger() -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return system_of_record(payments_path(), _RECORDS, {
        "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?)": _ORDERS,
        "INSERT OR IGNORE INTO tickets VALUES (?, 'open', '', NULL)": [(o[0],) for o in _ORDERS],
    })


def add_order(order_id: str, customer: str, paid: str, method: str = "card") -> None:
    """Record another paid order (and its open ticket) in the system of record."""
    with _ledger() as conn:
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (order_id, customer, paid, method))
        conn.execute("INSERT OR IGNORE INTO tickets VALUES (?, 'open', '', NULL)", (order_id,))


def reset_records() -> None:
    """Start the demo's system of record afresh: no refunds, e-mails or closed tickets."""
    with _ledger() as conn:
        for table in ("refunds", "outbox", "tickets"):
            conn.execute(f"DELETE FROM {table}")
        conn.executemany("INSERT OR IGNORE INTO tickets VALUES (?, 'open', '', NULL)",
                         [(o[0],) for o in _ORDERS])


def outbox(recipient: str) -> list[tuple[str, str]]:
    """The e-mails sent to a customer: (subject, body)."""
    with _ledger() as conn:
        return conn.execute("SELECT subject, body FROM outbox WHERE recipient = ? "
                            "ORDER BY rowid", (recipient,)).fetchall()


def ticket(order_id: str) -> tuple[str, str] | None:
    """The support ticket of an order: (status, note)."""
    with _ledger() as conn:
        row = conn.execute("SELECT status, note FROM tickets WHERE order_id = ?",
                           (order_id,)).fetchone()
    return (str(row[0]), str(row[1])) if row else None


@effect(name="demo.pay_refund")
def pay_refund(order_id: str, amount: str, *, idempotency_key: str = "") -> str:
    """Refund through the payment provider; runs once per call site, whatever re-runs."""
    txn = "TXN-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:10].upper()
    with faults.call("payments.refund"), _ledger() as conn:
        conn.execute("INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?)",
                     (txn, order_id, amount, idempotency_key))
    return txn


@effect(name="demo.send_receipt")
def send_receipt(recipient: str, txn: str, amount: str, *, idempotency_key: str = "") -> str:
    """E-mail the receipt (to the local outbox); sent once, whatever re-runs."""
    with faults.call("mail.receipt"), _ledger() as conn:
        conn.execute("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?)",
                     (idempotency_key, recipient, f"Your refund {txn}",
                      f"We refunded ${amount} to your original payment method ({txn})."))
    return f"receipt e-mailed to {recipient}"


@effect(name="demo.close_ticket")
def close_ticket(order_id: str, note: str, *, idempotency_key: str = "") -> str:
    with faults.call("tickets.close"), _ledger() as conn:
        conn.execute("UPDATE tickets SET status = 'closed', note = ?, key = ? "
                     "WHERE order_id = ?", (note, idempotency_key, order_id))
    return f"ticket of order {order_id} closed"


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
    return {"receipt": txn, "events": events, "status": "refunded",
            "approved_by": ", ".join(approval.approvers) if approval else "",
            "comment": (approval.comment or "") if approval else ""}


def email_receipt(state: RefundState) -> RefundState:
    guard("email_receipt", {"order_id": state["order_id"]})
    sent = send_receipt(state["customer"], state["receipt"], state["amount"])
    return {"events": [sent]}


def update_ticket(state: RefundState) -> RefundState:
    guard("update_ticket", {"order_id": state["order_id"]})
    note = f"refunded ${state['amount']} as {state['receipt']}"
    if state.get("approved_by"):
        note += f", approved by {state['approved_by']}"
    closed = close_ticket(state["order_id"], note)
    memory = _memory(state["customer"])
    if memory is not None:  # the case, and what the customer asked for, for next time
        store, space = memory
        store.put(space, f"case-{state['order_id']}-{state['receipt']}",
                  {"kind": "case", "order_id": state["order_id"], "amount": state["amount"],
                   "text": f"order {state['order_id']}: {note}"},
                  purpose="case-file", subject=state["customer"])
        if state.get("preference"):
            store.put(space, "preference", {"kind": "preference",
                                            "text": str(state["preference"])},
                      purpose="preference", subject=state["customer"])
    return {"events": [closed], "outcome": {"status": "refunded", "receipt": state["receipt"],
                                            "amount": state["amount"]}}


# A transient failure of the provider, the mail or the tickets (an error it marks
# transient, a dropped connection, no answer in time) is tried again as the agent workflows'
# tool calls are (steward.nodes.tools.Retry's defaults: three attempts in all).
_TOOLS = Retry()
RETRY = RetryPolicy(max_attempts=_TOOLS.attempts, initial_interval=_TOOLS.initial,
                    backoff_factor=_TOOLS.factor, max_interval=_TOOLS.max_delay,
                    retry_on=lambda exc: isinstance(exc, _TOOLS.on))
_ACTING = ("issue_refund", "email_receipt", "update_ticket")


def build_refund_graph() -> StateGraph[RefundState]:
    """verify_order -> check_payment -> compute_refund -> issue_refund (a manager approves
    above 100.00) -> email_receipt -> update_ticket; an unknown order or an amount that cannot
    be refunded ends the run with ``outcome`` (and ``status``) saying why. The steps that act
    try again on transient failures (``RETRY``)."""
    builder = StateGraph(RefundState)
    steps = [("verify_order", verify_order), ("check_payment", check_payment),
             ("compute_refund", compute_refund), ("issue_refund", issue_refund),
             ("email_receipt", email_receipt), ("update_ticket", update_ticket)]
    for name, fn in steps:
        # The steps that call the provider, the mail and the tickets try again on their
        # transient failures; the effect ledger keeps each to one act (one idempotency key).
        builder.add_node(name, fn, retry_policy=RETRY if name in _ACTING else None)
    builder.add_edge(START, "verify_order")
    builder.add_conditional_edges("verify_order", _refundable,
                                  {"next": "check_payment", END: END})
    builder.add_edge("check_payment", "compute_refund")
    builder.add_conditional_edges("compute_refund", _refundable,
                                  {"next": "issue_refund", END: END})
    builder.add_edge("issue_refund", "email_receipt")
    builder.add_edge("email_receipt", "update_ticket")
    builder.add_edge("update_ticket", END)
    return builder


def compile_refund_graph(checkpointer: Any, store: Any = None) -> CompiledStateGraph[Any]:
    """The refund graph compiled on a runtime's checkpointer (and store, for its memories)."""
    return build_refund_graph().compile(checkpointer=checkpointer, store=store, name="refund")
