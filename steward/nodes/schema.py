"""The effect ledger's table: one row per side effect's call site."""

from __future__ import annotations

from steward.storage.migrations import Migration, Schema

__all__ = ["SCHEMA"]

# Legacy version 5: the effect ledger (issue #5): one row per side effect's call site, written as an
# intent before the call and completed with its result (serde, sealed when encrypted) after.
_LEDGER = """
CREATE TABLE steward_effects (
    thread_id TEXT NOT NULL,
    task_ns TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    type TEXT,
    result {blob},
    error TEXT,
    started_at {real} NOT NULL,
    finished_at {real},
    PRIMARY KEY (thread_id, task_ns, seq)
)
"""

SCHEMA = Schema("ledger", (Migration(_LEDGER, 5),),
                thread_tables=("steward_effects",))
