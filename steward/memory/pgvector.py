"""pgvector for semantic recall, where the PostgreSQL server has it (issue #17).

At every ``setup()`` on PostgreSQL (``ensure_op``, the memory schema's ``ensure`` step), Steward
looks for the ``vector`` extension in ``pg_available_extensions``. When the server has it (0.8
or newer) and this database has it or the role may create it, ``steward_memory`` gains a
``vec`` column of pgvector's ``vector`` type beside the ``embedding`` bytes, rows that have an
embedding but no ``vec`` are filled in (a database written before, or by an older Steward), and
each dimension stored gets its own HNSW index. Elsewhere (SQLite, a server without pgvector, a
role that may not create it) nothing changes and recall stays the exact scan.

Why a column of any dimension and one partial index per dimension, not ``vector(384)``: the
store learns the dimension only from its first embedding (any LangChain ``Embeddings``), and
a database outlives its embedding model. So ``vec`` is ``vector`` without a dimension and
each dimension ``d`` gets ``steward_memory_hnsw_<d>``, an HNSW index (inner product: the
vectors are unit length, so it ranks as cosine) on ``vec::vector(d)`` for the rows where
``vector_dims(vec) = d``, created by the first write of that dimension. A search names its
dimension as a literal, so the planner finds that index; items embedded at another dimension
are never compared with the query. pgvector's HNSW index takes at most 2,000 dimensions: larger
vectors are stored and recalled by the exact scan.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from steward.storage.migrations import PG_LOCK
from steward.storage.ops import Op, Stmt

__all__ = [
    "HNSW_MAX_DIMS",
    "Recall",
    "VectorSupport",
    "detect_op",
    "dims_of",
    "ensure_op",
    "index_name",
    "index_op",
    "index_sql",
    "literal",
]

HNSW_MAX_DIMS = 2_000  # pgvector's HNSW index on ``vector``
VECTOR_MAX_DIMS = 16_000  # pgvector's ``vector`` type
MIN_VERSION = (0, 8)  # iterative index scans (hnsw.iterative_scan): filters do not starve
_BACKFILL = 500  # rows per round trip when filling in ``vec``
_INDEX = re.compile(r"steward_memory_hnsw_([0-9]+)")

# Everything the store needs to know, in one round trip: the extension (its schema, quoted,
# and version), Steward's column, the valid HNSW indexes on it, and why not, when not.
_DETECT = """
SELECT quote_ident(n.nspname), e.extversion,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass('steward_memory')
               AND a.attname = 'vec' AND NOT a.attisdropped),
       ARRAY(SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = to_regclass('steward_memory') AND i.indisvalid
             AND c.relname ~ '^steward_memory_hnsw_[0-9]+$'),
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector'),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       current_user, current_database()
FROM (SELECT 1) AS one
LEFT JOIN pg_extension e ON e.extname = 'vector'
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
"""

# CREATE EXTENSION needs a superuser (pgvector is not a trusted extension): a role that may not
# is told so by recall_info(), and setup goes on with the exact scan. That refusal (or an
# installation missing its files) is caught in the block's own subtransaction, so the setup's
# transaction goes on; any other error fails the setup, as errors do.
_CREATE = """
DO $steward$ BEGIN
    CREATE EXTENSION IF NOT EXISTS vector;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    NULL;
END $steward$
"""


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"[0-9]+", text or ""))


@dataclass(frozen=True)
class VectorSupport:
    """What this database offers semantic recall: ``schema`` is pgvector's (quoted) when the
    ``vec`` column is there, else None; ``indexed``: the dimensions with an HNSW index;
    ``reason``: why there is no index (empty when there is one)."""

    schema: str | None = None
    version: str | None = None
    indexed: frozenset[int] = field(default_factory=frozenset)
    reason: str = ""

    def index_for(self, dims: int) -> bool:
        return self.schema is not None and dims in self.indexed

    def why_not(self, dims: int) -> str:
        if self.schema is None:
            return self.reason
        if dims > HNSW_MAX_DIMS:
            return (f"pgvector's HNSW index takes at most {HNSW_MAX_DIMS:,} dimensions; these "
                    f"vectors have {dims:,}")
        return f"no HNSW index for {dims}-dimension vectors yet (the first write of one builds it)"


def _support(row: Sequence[Any]) -> VectorSupport:
    schema, version, column, indexes, available, superuser, user, database = row
    if schema is None:
        if not available:
            reason = "this PostgreSQL server has no pgvector (no 'vector' extension available)"
        elif not superuser:
            reason = (f"pgvector is available on this server but not created in database "
                      f"{database!r}, and role {user!r} may not create it: a superuser can, "
                      "with CREATE EXTENSION vector; then open the runtime again")
        else:
            reason = ("pgvector is available but not created in this database: open the "
                      "runtime again (setup creates it)")
        return VectorSupport(reason=reason)
    if _version(version) < MIN_VERSION:
        return VectorSupport(version=version, reason=(
            f"pgvector {version} is older than 0.8, which filtered index scans need: "
            "ALTER EXTENSION vector UPDATE, then open the runtime again"))
    if not column:
        return VectorSupport(version=version, reason=(
            "Steward's vector column is not set up in this database yet: open the runtime "
            "again (setup adds it)"))
    dims = frozenset(int(m.group(1)) for m in map(_INDEX.fullmatch, indexes or ()) if m)
    return VectorSupport(schema, version, dims)


def _detect_op() -> Op[tuple[Any, ...]]:
    row: tuple[Any, ...] | None = (yield Stmt(_DETECT)).one()
    assert row is not None  # one row, always
    return row


def detect_op() -> Op[VectorSupport]:
    """What the database offers now (PostgreSQL only)."""
    return _support((yield from _detect_op()))


def literal(blob: bytes) -> str:
    """A stored vector (float32 bytes) as pgvector's text, exactly: every float32 value
    printed with enough digits to read back the same."""
    return "[" + ",".join(map(repr, np.frombuffer(blob, dtype=np.float32).tolist())) + "]"


def index_name(dims: int) -> str:
    return f"steward_memory_hnsw_{int(dims)}"


def index_sql(schema: str, dims: int) -> str:
    """The HNSW index of the ``dims``-dimension vectors (inner product: they are unit length)."""
    d = int(dims)
    return (f"CREATE INDEX IF NOT EXISTS {index_name(d)} ON steward_memory USING hnsw "
            f"((vec::{schema}.vector({d})) {schema}.vector_ip_ops) "
            f"WHERE {schema}.vector_dims(vec) = {d}")


def index_op(schema: str, dims: int) -> Op[None]:
    """Build the index of a new dimension, once, whoever writes it first (under Steward's
    setup lock, so two processes do not both build it)."""
    yield Stmt(PG_LOCK)
    yield Stmt(index_sql(schema, dims))


def ensure_op(dialect: str) -> Op[None]:
    """At every setup: pgvector's column, its backfill and indexes, where the server has it."""
    if dialect != "postgres":
        return
    row = yield from _detect_op()
    if row[0] is None and row[4]:  # available on the server, not created in this database
        yield Stmt(_CREATE)
        row = yield from _detect_op()
    schema, version, column = row[0], row[1], row[2]
    if schema is None or _version(version) < MIN_VERSION:
        return  # no pgvector here (or too old): the exact scan, nothing changes
    if not column:
        # EXTERNAL: a vector too large to stay in the row goes out of line uncompressed
        # (floats do not compress), leaving the bytes the exact scan reads in the row.
        yield Stmt(f"ALTER TABLE steward_memory ADD COLUMN IF NOT EXISTS vec {schema}.vector")
        yield Stmt("ALTER TABLE steward_memory ALTER COLUMN vec SET STORAGE EXTERNAL")
        # Rows with an embedding and no vector: none once set up, but a writer that does not
        # know the column (an older Steward) leaves some, filled in at the next setup.
        yield Stmt("CREATE INDEX IF NOT EXISTS steward_memory_unvectored ON steward_memory "
                   "(namespace, key) WHERE embedding IS NOT NULL AND vec IS NULL")
    dims: set[int] = set()
    after: tuple[str, str] = ("", "")
    while True:
        rows = (yield Stmt(
            "SELECT namespace, key, embedding FROM steward_memory WHERE embedding IS NOT NULL "
            "AND vec IS NULL AND (namespace, key) > (?, ?) ORDER BY namespace, key LIMIT "
            f"{_BACKFILL}", after)).rows
        if not rows:
            break
        fill = []
        for namespace, key, blob in rows:
            blob = bytes(blob)
            if blob and len(blob) % 4 == 0 and len(blob) // 4 <= VECTOR_MAX_DIMS:
                fill.append((literal(blob), namespace, key))
                dims.add(len(blob) // 4)
        if fill:
            yield Stmt(f"UPDATE steward_memory SET vec = ?::{schema}.vector "
                       "WHERE namespace = ? AND key = ?", fill, many=True, wait=False)
        after = (rows[-1][0], rows[-1][1])
    for d in sorted(dims):
        if d <= HNSW_MAX_DIMS:
            yield Stmt(index_sql(schema, d))


class RecallChoice(Protocol):
    """What ``MemoryRules`` says about recall (``"auto"`` or ``"exact"``, and ef_search)."""

    @property
    def recall(self) -> str: ...

    @property
    def ef_search(self) -> int: ...


_REDETECT = 60.0  # seconds before asking the database again what it offers recall


def dims_of(vector: bytes | None) -> int | None:
    """The dimension of a vector as the store keeps it (float32 bytes)."""
    return len(vector) // 4 if vector is not None else None


class Recall:
    """How a store ranks: what the database offers semantic recall (``VectorSupport``), asked
    once and again after ``_REDETECT`` seconds when it lacks what a call needs, and the
    rules' choice (``MemoryRules.recall``, ``ef_search``); shared by a store's views."""

    def __init__(self, rules: RecallChoice) -> None:
        self.rules = rules
        self.support: VectorSupport | None = None
        self.at = 0.0

    def stale(self, dims: int | None) -> bool:
        if self.support is None:
            return True
        have = self.support.schema is not None and (dims is None or dims > HNSW_MAX_DIMS
                                                    or dims in self.support.indexed)
        return not have and time.monotonic() - self.at > _REDETECT

    def found(self, support: VectorSupport) -> VectorSupport:
        self.support, self.at = support, time.monotonic()
        return support

    def index(self, support: VectorSupport | None, query: Sequence[float]) -> str | None:
        """pgvector's schema when a search with ``query`` goes through its index."""
        if self.rules.recall != "auto" or support is None \
                or not support.index_for(len(query)):
            return None
        return support.schema

    def built(self, support: VectorSupport | None, vector: bytes | None) -> None:
        """After a write that stored a vector in ``vec``: its dimension has an index now."""
        dims = dims_of(vector)
        if support is not None and support.schema is not None and dims is not None \
                and dims <= HNSW_MAX_DIMS and self.support is not None:
            self.support = replace(self.support, indexed=self.support.indexed | {dims})

    def info(self, support: VectorSupport | None) -> dict[str, Any]:
        """``rt.store.recall_info()``: the method, pgvector's version, the indexed
        dimensions, ``ef_search`` and why the exact scan runs when it does."""
        info: dict[str, Any] = {"method": "exact", "pgvector": None, "dimensions": [],
                                "ef_search": None, "reason": ""}
        if support is None:
            info["reason"] = "SQLite: the exact scan (pgvector is a PostgreSQL extension)"
        elif self.rules.recall == "exact":
            info["reason"] = "MemoryRules(recall='exact')"
            info["pgvector"] = support.version
        elif support.schema is None:
            info["reason"] = support.reason
            info["pgvector"] = support.version
        else:
            info.update(method="hnsw", pgvector=support.version,
                        dimensions=sorted(support.indexed), ef_search=self.rules.ef_search,
                        reason="" if support.indexed else
                        "no vectors stored yet: the first write of a dimension builds its index")
        return info
