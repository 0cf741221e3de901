"""Long-term memory's table: the items, each kept for a purpose, with its subject."""

from __future__ import annotations

from steward.memory.pgvector import ensure_op
from steward.storage.migrations import Migration, Schema

__all__ = ["SCHEMA"]

# Legacy version 7: long-term memory (issue #8). Items live in namespaces anchored to a
# tenant and a scope ("user:<id>", "agent:<id>", "team:<name>"), each written for a purpose
# that sets when it expires, with the subject whose personal data it holds (erasure) and an
# optional vector (float32) for semantic recall.
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
CREATE INDEX steward_memory_expiry ON steward_memory (expires_at) WHERE expires_at IS NOT NULL
"""

# On PostgreSQL with pgvector, every setup also adds a vector column, fills it in and indexes it
# (steward.memory.pgvector): that depends on the server, not on the version.
SCHEMA = Schema("memory", (Migration(_MEMORY, 7),), ensure=ensure_op)
