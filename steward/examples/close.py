"""Month-end close: reconcile, flag variances, and post only when two controllers agree.

A close runs over days: the agent graph (``build_agent_graph``) reconciles each account of the
period against the bank (read-only), flags the variances (an effect), then asks to post the
close with the period's total variance. The policy (``CLOSE_POLICY``) wants two distinct
approvers for ``post_close`` (``@quorum("2")``): controllers, and, when the total variance is
above the tolerance of 100.00, the CFO may be one of them; a period is closed once. A request
left waiting two days is escalated to the ``cfo`` (the reminder). The ledger is a small SQLite
file (``$STEWARD_DEMO_RECORDS``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from decimal import Decimal
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg, tool
from langgraph.graph import StateGraph

from steward.examples import faults
from steward.examples.records import records_path, system_of_record
from steward.graphs import build_agent_graph
from steward.guardrails.policy import Policy
from steward.guardrails.request import Escalate
from steward.nodes.tools import Retry
from steward.state import WorkingContext

__all__ = ["CLOSE_POLICY", "add_period", "build_close_graph", "close_policy", "closes"]

APPROVAL_WAIT = 2 * 86400.0  # two days, then the CFO is asked instead

CLOSE_POLICY = """
@id("same-tenant")
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("two-controllers") @approval("controller") @quorum("2")
@reason("a period is closed by two controllers")
forbid (principal, action == Action::"post_close", resource);

@id("variance-exception") @approval("cfo")
@reason("the period carries more variance than the tolerance of 100.00")
forbid (principal, action == Action::"post_close", resource)
when { context.args.total_variance.greaterThan(decimal("100.00")) };

@id("closed-once") @reason("a period is closed once")
forbid (principal, action == Action::"post_close", resource)
when { context.history has post_close && context.history.post_close.succeeded > 0 };
"""

_LEDGER = (
    "CREATE TABLE IF NOT EXISTS balances (period TEXT, account TEXT, book TEXT, bank TEXT, "
    "PRIMARY KEY (period, account))",
    "CREATE TABLE IF NOT EXISTS variance_flags (key TEXT PRIMARY KEY, period TEXT, "
    "account TEXT, variance TEXT)",
    "CREATE TABLE IF NOT EXISTS closes (key TEXT PRIMARY KEY, period TEXT, posted_by TEXT, "
    "posted_at REAL)",
)
_BALANCES = (("2026-10", "cash", "125000.00", "125000.00"),
             ("2026-10", "receivables", "48210.50", "48190.50"),
             ("2026-10", "payables", "-30115.00", "-30115.00"),
             ("2026-11", "cash", "99000.00", "98500.00"),
             ("2026-11", "receivables", "51000.00", "51000.00"))


def _ledger() -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return system_of_record(records_path(), _LEDGER,
                            {"INSERT OR IGNORE INTO balances VALUES (?, ?, ?, ?)": _BALANCES})


def close_policy() -> Policy:
    return Policy.from_cedar(CLOSE_POLICY)


@tool
def reconcile_account(period: str, account: str) -> dict[str, Any]:
    """Compare an account's book balance with the bank's for a period."""
    with faults.call("ledger.reconcile"), _ledger() as conn:
        row = conn.execute("SELECT book, bank FROM balances WHERE period = ? AND account = ?",
                           (period, account)).fetchone()
    if row is None:
        raise KeyError(f"no balances for {account!r} in {period}")
    variance = Decimal(row[0]) - Decimal(row[1])
    return {"period": period, "account": account, "book": row[0], "bank": row[1],
            "variance": str(variance)}


@tool
def flag_variances(period: str, idempotency_key: Annotated[str, InjectedToolArg]) -> list[str]:
    """Record every account of the period whose book and bank balances differ."""
    flagged = []
    with faults.call("ledger.flag"), _ledger() as conn:
        for account, book, bank in conn.execute(
                "SELECT account, book, bank FROM balances WHERE period = ? ORDER BY account",
                (period,)).fetchall():
            variance = Decimal(book) - Decimal(bank)
            if variance:
                conn.execute("INSERT OR IGNORE INTO variance_flags VALUES (?, ?, ?, ?)",
                             (f"{idempotency_key}:{account}", period, account, str(variance)))
                flagged.append(f"{account} {variance}")
    return flagged


@tool
def post_close(period: str, total_variance: str,
               idempotency_key: Annotated[str, InjectedToolArg],
               principal: Annotated[dict[str, Any], InjectedToolArg]) -> dict[str, Any]:
    """Post the period's close (final)."""
    with faults.call("ledger.close"), _ledger() as conn:
        conn.execute("INSERT OR IGNORE INTO closes VALUES (?, ?, ?, ?)",
                     (idempotency_key, period, principal["id"], time.time()))
    return {"period": period, "closed": True}


def _accounts(period: str) -> list[str]:
    with _ledger() as conn:
        return [r[0] for r in conn.execute("SELECT account FROM balances WHERE period = ? "
                                           "ORDER BY account", (period,))]


def _total_variance(period: str) -> Decimal:
    with _ledger() as conn:
        rows = conn.execute("SELECT book, bank FROM balances WHERE period = ?",
                            (period,)).fetchall()
    return sum((abs(Decimal(book) - Decimal(bank)) for book, bank in rows), Decimal("0.00"))


def _plan(state: WorkingContext) -> list[dict[str, Any]]:
    period = str((state.get("inputs") or {}).get("period", ""))
    steps: list[dict[str, Any]] = [
        {"tool": "reconcile_account", "args": {"period": period, "account": a},
         "reason": "book against bank"} for a in _accounts(period)]
    total = _total_variance(period)
    return [*steps,
            {"tool": "flag_variances", "args": {"period": period}, "reason": "for review"},
            {"tool": "post_close", "args": {"period": period, "total_variance": f"{total:.2f}"},
             "reason": "two approvers close the period"}]


def build_close_graph(model: Any = None, *, timeout: float = 30.0,
                      retry: Retry | None = None) -> StateGraph[WorkingContext]:
    """The static plan offline; with ``model``, the model plans from the request;
    ``timeout`` and ``retry``: each tool call's (see ``build_agent_graph``)."""
    return build_agent_graph(
        [reconcile_account, flag_variances, post_close], model=model,
        static_plan=None if model is not None else _plan,
        read_only=["reconcile_account"], timeout=timeout, retry=retry,
        approvals={"post_close": {"expires_in": APPROVAL_WAIT,
                                  "on_expire": Escalate(["cfo"])}})


def add_period(period: str, balances: list[tuple[str, str, str]]) -> None:
    """Record a period's accounts: (account, book balance, bank balance)."""
    with _ledger() as conn:
        conn.executemany("INSERT INTO balances VALUES (?, ?, ?, ?)",
                         [(period, *row) for row in balances])


def closes(period: str) -> list[dict[str, Any]]:
    """The period's posted closes (the system of record's view)."""
    with _ledger() as conn:
        rows = conn.execute("SELECT posted_by, posted_at, key FROM closes WHERE period = ?",
                            (period,)).fetchall()
    return [{"posted_by": r[0], "posted_at": r[1], "key": r[2]} for r in rows]
