"""The guardrails' tables: approval requests, their votes, and the actions guards authorized."""

from __future__ import annotations

from steward.storage.migrations import LAYOUT, Migration, Schema

__all__ = ["SCHEMA"]

# Legacy version 4: guardrail records (issue #4). Approval requests and their votes, and the actions
# guards authorized, kept with the thread (deleted with it) and queryable across threads.
_GUARDRAILS = """
CREATE TABLE steward_approvals (
    request_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    task_ns TEXT NOT NULL,
    seq INTEGER NOT NULL,
    tenant TEXT,
    action TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    request {json} NOT NULL,
    required_roles {json} NOT NULL,
    requested_by TEXT,
    quorum INTEGER NOT NULL,
    status TEXT NOT NULL,
    on_expire {json},
    created_at {real} NOT NULL,
    expires_at {real},
    decided_at {real},
    successor TEXT
);
CREATE INDEX steward_approvals_site ON steward_approvals (thread_id, task_ns, seq);
CREATE INDEX steward_approvals_pending ON steward_approvals (tenant, status, created_at);
CREATE INDEX steward_approvals_expiry ON steward_approvals (status, expires_at);
CREATE TABLE steward_votes (
    request_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    task_ns TEXT NOT NULL,
    position INTEGER NOT NULL,
    role TEXT,
    decision TEXT NOT NULL,
    comment TEXT,
    args_hash TEXT NOT NULL,
    at {real} NOT NULL,
    PRIMARY KEY (request_id, voter)
);
CREATE UNIQUE INDEX steward_votes_position ON steward_votes (thread_id, task_ns, position);
CREATE TABLE steward_actions (
    thread_id TEXT NOT NULL,
    task_ns TEXT NOT NULL,
    seq INTEGER NOT NULL,
    checkpoint_id {text_c} NOT NULL,
    action TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    effect TEXT NOT NULL,
    numbers {json} NOT NULL,
    decision {json} NOT NULL,
    principal_id TEXT,
    at {real} NOT NULL,
    PRIMARY KEY (thread_id, task_ns, seq)
)
"""

# Standing approvals (issue #15): an approver's grant that lets later calls of one action on
# one thread pass without asking again, up to ``uses`` calls until ``expires_at``, revocable.
_STANDING = """
CREATE TABLE steward_standing (
    standing_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    tenant TEXT,
    action TEXT NOT NULL,
    roles {json} NOT NULL,
    request_id TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    uses INTEGER NOT NULL,
    used INTEGER NOT NULL,
    created_at {real} NOT NULL,
    expires_at {real} NOT NULL,
    revoked_at {real},
    revoked_by TEXT
);
CREATE INDEX steward_standing_thread ON steward_standing (thread_id, action)
"""

SCHEMA = Schema("guardrails", (Migration(_GUARDRAILS, 4), Migration(_STANDING, LAYOUT)),
                thread_tables=("steward_votes", "steward_approvals", "steward_actions",
                               "steward_standing"))
