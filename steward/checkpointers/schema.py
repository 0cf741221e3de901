"""The saver's tables: threads (identity, leases, what they wait on, subjects), checkpoints,
channel values (whole or as list deltas) and pending writes."""

from __future__ import annotations

from steward.storage.migrations import LAYOUT, Migration, Schema

__all__ = ["SCHEMA"]

# Legacy version 1: the saver's tables.
_TABLES = """
CREATE TABLE steward_threads (
    thread_id TEXT PRIMARY KEY,
    tenant TEXT,
    owner TEXT,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    waiting_on {json},
    waiting_at {text_c},
    expires_at {real},
    lease_owner TEXT,
    lease_expires_at {real},
    lease_epoch BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX steward_threads_tenant ON steward_threads (tenant, owner);
CREATE INDEX steward_threads_status ON steward_threads (tenant, status);
CREATE INDEX steward_threads_expires ON steward_threads (expires_at);
CREATE TABLE steward_checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id {text_c} NOT NULL,
    parent_checkpoint_id {text_c},
    run_id TEXT,
    type TEXT NOT NULL,
    checkpoint {blob} NOT NULL,
    metadata {json} NOT NULL,
    channel_versions {json} NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX steward_checkpoints_run ON steward_checkpoints (run_id);
CREATE TABLE steward_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob {blob} NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);
CREATE TABLE steward_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id {text_c} NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    blob {blob} NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
)
"""

# Legacy version 2: growing lists stored as deltas (issue #3) and indexed identity and metadata.
_DELTAS_AND_INDEXES = {
    "shared": """
ALTER TABLE steward_blobs ADD COLUMN base_version TEXT;
ALTER TABLE steward_blobs ADD COLUMN keep INTEGER;
ALTER TABLE steward_blobs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steward_threads ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
DROP INDEX steward_threads_tenant;
CREATE INDEX steward_threads_tenant ON steward_threads (tenant, created_at);
CREATE INDEX steward_threads_owner ON steward_threads (tenant, owner, created_at)
""",
    "sqlite": """
CREATE INDEX steward_checkpoints_md_tenant
    ON steward_checkpoints (json_extract(metadata, '$."tenant"'));
CREATE INDEX steward_checkpoints_md_principal
    ON steward_checkpoints (json_extract(metadata, '$."principal_id"'));
CREATE INDEX steward_checkpoints_md_source
    ON steward_checkpoints (json_extract(metadata, '$."source"'));
CREATE INDEX steward_checkpoints_md_step
    ON steward_checkpoints (json_extract(metadata, '$."step"'))
""",
    "postgres": """
CREATE INDEX steward_checkpoints_metadata
    ON steward_checkpoints USING GIN (metadata jsonb_path_ops)
""",
}

# Legacy version 3: every index is a page written and flushed by every put on SQLite, so keep only
# the metadata index that something needs. A tenant's checkpoints are found through the thread
# table (a checkpoint's tenant is its thread's), and "source" or "step" alone select too much
# of every thread to be worth an index; who wrote a checkpoint ("principal_id") stays indexed.
# The threads waiting on someone are listed newest first, so their index ends in created_at.
_FEWER_INDEXES = {
    "shared": """
DROP INDEX steward_threads_status;
CREATE INDEX steward_threads_status ON steward_threads (tenant, status, created_at)
""",
    "sqlite": """
DROP INDEX steward_checkpoints_md_tenant;
DROP INDEX steward_checkpoints_md_source;
DROP INDEX steward_checkpoints_md_step
""",
}

# Legacy version 6: the audit chain's head rides on the thread row (its write participant reads
# it with the row, under the row's lock, and a deleted tail shows against it).
_PARTICIPANT_HEAD = """
ALTER TABLE steward_threads ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE steward_threads ADD COLUMN audit_head TEXT
"""

# Legacy version 8: a thread's subjects, the people whose personal data it holds (issue #13),
# declared by the workflow (rt.config(subjects=...) or steward.add_subjects inside a node), so
# that erasing a person reaches the threads about them as well as the threads they own.
_SUBJECTS = """
CREATE TABLE steward_subjects (
    thread_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    tenant TEXT,
    added_at {real} NOT NULL,
    PRIMARY KEY (thread_id, subject)
);
CREATE INDEX steward_subjects_subject ON steward_subjects (tenant, subject)
"""

# The approver's reach (issue #15): who resumed the thread last by a vote alone, so that the
# run their vote resumed may go on under their principal (identity.AccessRule.check).
_RESUMED_BY = """
ALTER TABLE steward_threads ADD COLUMN resumed_by TEXT;
CREATE INDEX steward_threads_resumed ON steward_threads (resumed_by, tenant)
WHERE resumed_by IS NOT NULL
"""

# Crash takeover (issue #16): the process holding a thread's lease (storage.liveness), so
# that a lease whose holder died is taken over at once rather than after lease_ttl.
_LEASE_HOLDER = "ALTER TABLE steward_threads ADD COLUMN lease_holder TEXT"

# Durable timers (issue #16): who a thread's last run acted as (the principal that took its
# lease with access of its own), and why a worker should wake the thread (an approval it waits
# on expired or was escalated: set in the same transaction as the expiry, cleared by the next
# write that changes what it waits on), so that workers find the threads to wake, across
# tenants, through two small partial indexes.
_RUN_AS = """
ALTER TABLE steward_threads ADD COLUMN run_as TEXT;
ALTER TABLE steward_threads ADD COLUMN wake TEXT;
CREATE INDEX steward_threads_running ON steward_threads (updated_at) WHERE status = 'running';
CREATE INDEX steward_threads_wake ON steward_threads (updated_at) WHERE wake IS NOT NULL
"""

SCHEMA = Schema("saver", (Migration(_TABLES, 1), Migration(_DELTAS_AND_INDEXES, 2),
                          Migration(_FEWER_INDEXES, 3), Migration(_PARTICIPANT_HEAD, 6),
                          Migration(_SUBJECTS, 8), Migration(_RESUMED_BY, LAYOUT),
                          Migration(_LEASE_HOLDER, LAYOUT), Migration(_RUN_AS, LAYOUT)))
