"""The schema, versioned: migration N brings a database from version N-1 to N.

Both dialects share the layout; only column types differ. ``setup()`` applies what is missing
inside one transaction that holds the database's write lock (SQLite ``BEGIN IMMEDIATE``,
Postgres ``pg_advisory_xact_lock``), so two processes starting at once cannot both migrate.
"""

from __future__ import annotations

from steward.checkpointers._ops import Op, Stmt
from steward.errors import ConfigError

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

_TYPES = {
    "sqlite": {"real": "REAL", "json": "TEXT", "blob": "BLOB", "text_c": "TEXT"},
    # Byte-order collation: ids compare the same as in Python, whatever the server's locale.
    "postgres": {"real": "DOUBLE PRECISION", "json": "JSONB", "blob": "BYTEA",
                 "text_c": 'TEXT COLLATE "C"'},
}

# Version 2: growing lists stored as deltas (issue #3) and indexed identity and metadata.
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

# Version 3: every index is a page written and flushed by every put on SQLite, so keep only
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

# Version 4: guardrail records (issue #4). Approval requests and their votes, and the actions
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

# Version 5: the effect ledger (issue #5): one row per side effect's call site, written as an
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

# Version 6: the audit trail (issue #6): a hash chain of events per thread, its head kept on
# the thread's row (so that a deleted tail shows), written in the transactions of the writes
# and checkpoints the events describe.
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
_AUDIT = {
    "shared": """
ALTER TABLE steward_threads ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE steward_threads ADD COLUMN audit_head TEXT
""",
    # A rowid table on SQLite: new events land on its rightmost page, and only the narrow key
    # index is written in the middle (measured: 2.5 pages per step where a WITHOUT ROWID
    # table, its wide rows split in key order, took 4.4).
    "sqlite": _AUDIT_TABLE,
    "postgres": _AUDIT_TABLE,
}

# Version 7: long-term memory (issue #8). Items live in namespaces anchored to a tenant and a
# scope ("user:<id>", "agent:<id>", "team:<name>"), each written for a purpose that sets when
# it expires, with the subject whose personal data it holds (erasure) and an optional vector
# (float32) for semantic recall. Audit events keep their payload's own hash, so that erasing a
# payload leaves the chain verifiable; erasures leave a receipt.
_MEMORY = """
CREATE TABLE steward_memory (
    namespace {text_c} NOT NULL,
    key {text_c} NOT NULL,
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject TEXT,
    purpose TEXT NOT NULL,
    type TEXT NOT NULL,
    value {blob} NOT NULL,
    embedding {blob},
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    expires_at {real},
    PRIMARY KEY (namespace, key)
);
CREATE INDEX steward_memory_scope ON steward_memory (tenant, scope, namespace);
CREATE INDEX steward_memory_subject ON steward_memory (tenant, subject);
CREATE INDEX steward_memory_expiry ON steward_memory (expires_at) WHERE expires_at IS NOT NULL;
ALTER TABLE steward_audit ADD COLUMN payload_hash TEXT;
CREATE TABLE steward_erasures (
    receipt_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    erased_by TEXT,
    at {real} NOT NULL,
    receipt {json} NOT NULL
)
"""

# Version 8: a thread's subjects, the people whose personal data it holds (issue #13), declared
# by the workflow (rt.config(subjects=...) or steward.add_subjects inside a node), so that
# erasing a person reaches the threads about them as well as the threads they own.
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

# MIGRATIONS[i] brings the schema to version i + 1. Append; never edit a released entry. An
# entry is one script for both dialects, or a dict of a "shared" script and one per dialect.
MIGRATIONS: list[str | dict[str, str]] = [_TABLES, _DELTAS_AND_INDEXES, _FEWER_INDEXES,
                                             _GUARDRAILS, _LEDGER, _AUDIT, _MEMORY, _SUBJECTS]
VERSION = len(MIGRATIONS)

META_DDL = "CREATE TABLE IF NOT EXISTS steward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
PG_LOCK = "SELECT pg_advisory_xact_lock(7311662358017)"  # any constant unique to Steward


def migration_statements(dialect: str, version: int) -> list[str]:
    entry = MIGRATIONS[version - 1]
    scripts = [entry] if isinstance(entry, str) else [entry["shared"], entry.get(dialect, "")]
    return [stmt.strip() for script in scripts
            for stmt in script.format(**_TYPES[dialect]).split(";") if stmt.strip()]


def setup_op(dialect: str, url: str, key_fingerprint: str | None) -> Op[int]:
    """Bring the schema up to date and check the encryption key; returns the version found."""
    if dialect == "postgres":
        yield Stmt(PG_LOCK)
    yield Stmt(META_DDL)
    row = (yield Stmt("SELECT value FROM steward_meta WHERE key = 'schema_version'")).one()
    found = int(row[0]) if row else 0
    if found > VERSION:
        raise ConfigError(
            f"database {url} has Steward schema version {found}, newer than this Steward "
            f"understands ({VERSION}): upgrade langgraph-steward to open it. Nothing was changed."
        )
    stored = (yield Stmt("SELECT value FROM steward_meta WHERE key = 'key_fingerprint'")).one()
    if stored is not None and key_fingerprint is None:
        raise ConfigError(
            f"database {url} is encrypted: open it with steward.open(url, encryption_key=...) "
            "or set STEWARD_ENCRYPTION_KEY."
        )
    if stored is not None and stored[0] != key_fingerprint:
        raise ConfigError(
            f"the encryption key does not match the one database {url} was written with: "
            "use the original key. Nothing was read or changed."
        )
    if stored is None and key_fingerprint is not None and found > 0:
        has_data = (yield Stmt("SELECT 1 FROM steward_checkpoints LIMIT 1")).one()
        if has_data:
            raise ConfigError(
                f"database {url} holds checkpoints written without encryption: open it without "
                "a key, or start a new database for encrypted threads. Nothing was changed."
            )
    for version in range(found + 1, VERSION + 1):
        for stmt in migration_statements(dialect, version):
            yield Stmt(stmt)
    if found != VERSION:
        yield Stmt(
            "INSERT INTO steward_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(VERSION),),
        )
    if stored is None and key_fingerprint is not None:
        yield Stmt("INSERT INTO steward_meta (key, value) VALUES ('key_fingerprint', ?)",
                   (key_fingerprint,))
    return found
