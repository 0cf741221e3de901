"""The audit log's table: a hash chain of events per thread (its head rides on the thread row,
see the saver's schema)."""

from __future__ import annotations

from steward.storage.migrations import Migration, Schema

__all__ = ["SCHEMA"]

# Legacy version 6: the audit trail (issue #6): a hash chain of events per thread, written in
# the transactions of the writes and checkpoints the events describe.
_AUDIT_TABLE = """
CREATE TABLE steward_audit (
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at {real} NOT NULL,
    tenant TEXT,
    principal_id TEXT,
    run_id TEXT,
    node TEXT,
    step BIGINT,
    checkpoint_ns TEXT,
    checkpoint_id TEXT,
    duration {real},
    payload {json} NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
)"""
# A rowid table on SQLite: new events land on its rightmost page, and only the narrow key
# index is written in the middle (measured: 2.5 pages per step where a WITHOUT ROWID table,
# its wide rows split in key order, took 4.4).

# Legacy version 7: each event keeps its payload's own hash, so that erasing a payload
# (steward.memory.erase) leaves the chain verifiable.
_PAYLOAD_HASH = "ALTER TABLE steward_audit ADD COLUMN payload_hash TEXT"

# Legacy version 7 too: an erasure's receipt, which the tombstones it leaves in chains name.
_ERASURES = """
CREATE TABLE steward_erasures (
    receipt_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    erased_by TEXT,
    at {real} NOT NULL,
    receipt {json} NOT NULL
)
"""

SCHEMA = Schema("audit", (Migration(_AUDIT_TABLE, 6), Migration(_PAYLOAD_HASH, 7),
                          Migration(_ERASURES, 7)),
                thread_tables=("steward_audit",))
