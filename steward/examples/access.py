"""IT access provisioning: least privilege, approval for admin rights, grants that expire.

A request ("give dana read access to billing for 14 days") runs as an agent graph
(``build_agent_graph``) over three tools acting on a small local system of record (a SQLite
file, ``$STEWARD_DEMO_RECORDS``, default ``steward-demo-records.db``):

- ``lookup_user`` reads the directory under a read-only service identity;
- ``grant_access`` writes a grant under the provisioning identity, on behalf of the principal
  who asked (it is an effect: one grant per request, whatever re-runs);
- ``notify_user`` records the notification (an effect too).

The policy (``ACCESS_POLICY``) allows grants of at most 30 days, forbids granting oneself, and
asks the ``security`` role to approve any ``admin`` grant. ``expire_grants()`` revokes grants
whose time is up (call it from a scheduler: it is not a workflow of its own).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg, tool
from langgraph.graph import StateGraph

from steward.examples import faults
from steward.examples.records import records_path, system_of_record
from steward.graphs import build_agent_graph
from steward.guardrails.policy import Policy
from steward.nodes.tools import Retry
from steward.state import WorkingContext

__all__ = ["ACCESS_POLICY", "access_policy", "add_person", "build_access_graph", "expire_grants",
           "grants", "notifications"]

READER, PROVISIONER = "svc-directory-reader", "svc-provisioner"

ACCESS_POLICY = """
@id("same-tenant")
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("short-grants") @reason("access is granted for at most 30 days")
forbid (principal, action == Action::"grant_access", resource)
when { context.args.days > 30 };

@id("no-self-grants") @reason("nobody grants access to themselves")
forbid (principal, action == Action::"grant_access", resource)
when { context.args.user_id == principal.id };

@id("admin-needs-security") @approval("security")
@reason("admin rights need the security team's approval")
forbid (principal, action == Action::"grant_access", resource)
when { context.args.role == "admin" };
"""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS directory (user_id TEXT PRIMARY KEY, name TEXT, department TEXT)",
    "CREATE TABLE IF NOT EXISTS grants (grant_id TEXT PRIMARY KEY, user_id TEXT, system TEXT, "
    "role TEXT, requested_by TEXT, written_as TEXT, granted_at REAL, expires_at REAL, "
    "revoked_at REAL)",
    "CREATE TABLE IF NOT EXISTS notifications (key TEXT PRIMARY KEY, user_id TEXT, message TEXT)",
)
_PEOPLE = (("dana", "Dana Ito", "finance"), ("omar", "Omar Reyes", "engineering"),
           ("alice", "Alice Ng", "support"))


def _records() -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return system_of_record(records_path(), _SCHEMA,
                            {"INSERT OR IGNORE INTO directory VALUES (?, ?, ?)": _PEOPLE})


def access_policy() -> Policy:
    return Policy.from_cedar(ACCESS_POLICY)


@tool
def lookup_user(user_id: str) -> dict[str, Any]:
    """Look a user up in the directory (read-only identity)."""
    with faults.call("directory.lookup"), _records() as conn:
        row = conn.execute("SELECT name, department FROM directory WHERE user_id = ?",
                           (user_id,)).fetchone()
        active = conn.execute("SELECT system, role FROM grants WHERE user_id = ? AND "
                              "revoked_at IS NULL", (user_id,)).fetchall()
    if row is None:
        raise KeyError(f"no user {user_id!r} in the directory")
    return {"user_id": user_id, "name": row[0], "department": row[1], "read_as": READER,
            "active_grants": [f"{system}:{role}" for system, role in active]}


@tool
def grant_access(user_id: str, system: str, role: str, days: int,
                 idempotency_key: Annotated[str, InjectedToolArg],
                 principal: Annotated[dict[str, Any], InjectedToolArg]) -> dict[str, Any]:
    """Grant a user a role on a system for some days (provisioning identity)."""
    now = time.time()
    grant_id = "G-" + idempotency_key[-10:].upper()
    with faults.call("access.grant"), _records() as conn:
        conn.execute("INSERT OR IGNORE INTO grants VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                     (grant_id, user_id, system, role, principal["id"], PROVISIONER, now,
                      now + days * 86400))
    return {"grant_id": grant_id, "user_id": user_id, "system": system, "role": role,
            "days": days, "written_as": PROVISIONER, "on_behalf_of": principal["id"]}


@tool
def notify_user(user_id: str, message: str,
                idempotency_key: Annotated[str, InjectedToolArg]) -> str:
    """Tell the user what was granted."""
    with faults.call("access.notify"), _records() as conn:
        conn.execute("INSERT OR IGNORE INTO notifications VALUES (?, ?, ?)",
                     (idempotency_key, user_id, message))
    return f"notified {user_id}"


def _plan(state: WorkingContext) -> list[dict[str, Any]]:
    asked = state.get("inputs") or {}
    args = {k: asked.get(k) for k in ("user_id", "system", "role", "days")}
    return [
        {"tool": "lookup_user", "args": {"user_id": args["user_id"]},
         "reason": "who is it, what do they have"},
        {"tool": "grant_access", "args": args, "reason": "the grant asked for"},
        {"tool": "notify_user", "args": {"user_id": args["user_id"], "message":
                                         f"{args['role']} on {args['system']} for "
                                         f"{args['days']} days"},
         "reason": "tell them"},
    ]


def build_access_graph(model: Any = None, *, timeout: float = 30.0,
                       retry: Retry | None = None) -> StateGraph[WorkingContext]:
    """The static plan offline; with ``model``, the model plans from the request;
    ``timeout`` and ``retry``: each tool call's (see ``build_agent_graph``)."""
    return build_agent_graph([lookup_user, grant_access, notify_user], model=model,
                             static_plan=None if model is not None else _plan,
                             read_only=["lookup_user"], timeout=timeout, retry=retry)


def add_person(user_id: str, name: str, department: str) -> None:
    """Add someone to the directory (once: someone already there stays as they are)."""
    with _records() as conn:
        conn.execute("INSERT OR IGNORE INTO directory VALUES (?, ?, ?)",
                     (user_id, name, department))


def grants(user_id: str) -> list[dict[str, Any]]:
    """A user's grants in the system of record, newest first."""
    with _records() as conn:
        rows = conn.execute("SELECT grant_id, system, role, requested_by, written_as, "
                            "granted_at, expires_at, revoked_at FROM grants WHERE user_id = ? "
                            "ORDER BY granted_at DESC", (user_id,)).fetchall()
    keys = ("grant_id", "system", "role", "requested_by", "written_as", "granted_at",
            "expires_at", "revoked_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def notifications(user_id: str) -> list[str]:
    """What the user was told, oldest first."""
    with _records() as conn:
        return [r[0] for r in conn.execute("SELECT message FROM notifications WHERE user_id = ? "
                                           "ORDER BY rowid", (user_id,))]


def expire_grants(now: float | None = None) -> list[str]:
    """Revoke the grants whose time is up; returns their ids."""
    at = time.time() if now is None else now
    with _records() as conn:
        due = [r[0] for r in conn.execute("SELECT grant_id FROM grants WHERE revoked_at IS NULL "
                                          "AND expires_at <= ?", (at,))]
        conn.executemany("UPDATE grants SET revoked_at = ? WHERE grant_id = ?",
                         [(at, g) for g in due])
    return due
