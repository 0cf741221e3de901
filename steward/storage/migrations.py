"""Schema migrations, per part: each part that owns tables registers its own, versioned.

A part (the saver, guardrail records, the effect ledger, the audit log, memory) hands
:func:`setup_op` a :class:`Schema`: its name and its migrations, oldest first, and optionally
what it sets up at every setup because it depends on the server (``ensure``). Each part's
version is kept in ``steward_meta`` under ``schema:<part>``, so a part can be set up alone
(``StewardSaver.from_conn_string``) or with the others (``steward.open``), in one transaction
holding the database's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock``), so that two processes starting at once cannot both migrate.

Databases written before parts had their own versions hold one ``schema_version`` (1 to 8);
every migration says which of those versions brought it (``legacy``), which tells each part
where such a database stands. ``schema_version`` is then set to :data:`LAYOUT`, which older
Steward releases refuse as newer than they understand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steward.errors import ConfigError
from steward.storage.ops import Op, Stmt

__all__ = ["ENVELOPE_KEYS", "LAYOUT", "Migration", "Schema", "setup_op", "statements"]

LAYOUT = 9  # ``schema_version`` from which each part keeps its own version
TYPES = {
    "sqlite": {"real": "REAL", "json": "TEXT", "blob": "BLOB", "text_c": "TEXT"},
    # Byte-order collation: ids compare the same as in Python, whatever the server's locale.
    "postgres": {"real": "DOUBLE PRECISION", "json": "JSONB", "blob": "BYTEA",
                 "text_c": 'TEXT COLLATE "C"'},
}
META_DDL = "CREATE TABLE IF NOT EXISTS steward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
# The key check of a database sealed with per-thread data keys (steward.storage.envelope).
ENVELOPE_KEYS = "envelope-v1"
PG_LOCK = "SELECT pg_advisory_xact_lock(7311662358017)"  # any constant unique to Steward
_UPSERT = ("INSERT INTO steward_meta (key, value) VALUES (?, ?) "
           "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


@dataclass(frozen=True)
class Migration:
    """One step of a part's schema: a script for both dialects, or a mapping of a
    ``"shared"`` script and one per dialect (``"sqlite"``, ``"postgres"``). Column types are
    written ``{real}``, ``{json}``, ``{blob}``, ``{text_c}``."""

    script: str | Mapping[str, str]
    legacy: int  # the single schema version that brought it, before parts had their own


@dataclass(frozen=True)
class Schema:
    """A part's tables: its name and its migrations, oldest first (append, never edit)."""

    part: str
    migrations: tuple[Migration, ...]
    # Tables whose rows belong to a thread (a ``thread_id`` column): deleted with the thread.
    thread_tables: tuple[str, ...] = ()
    # What depends on the server rather than on the version (memory: pgvector, where the
    # server has it): an idempotent operation run by every setup, after the migrations, in
    # the same transaction; given the dialect.
    ensure: Callable[[str], Op[Any]] | None = None

    @property
    def version(self) -> int:
        return len(self.migrations)

    def found(self, stored: str | None, legacy: int) -> int:
        """The part's version in a database, from its own key or the legacy version."""
        if stored is not None:
            return int(stored)
        if legacy >= LAYOUT:  # parts keep their own versions: this one was never set up
            return 0
        return sum(1 for m in self.migrations if m.legacy <= legacy)


def statements(dialect: str, migration: Migration) -> list[str]:
    """A migration's statements in one dialect."""
    script = migration.script
    scripts = [script] if isinstance(script, str) else [script["shared"],
                                                         script.get(dialect, "")]
    return [stmt.strip() for text in scripts
            for stmt in text.format(**TYPES[dialect]).split(";") if stmt.strip()]


def setup_op(dialect: str, url: str, schemas: Sequence[Schema], key_fingerprint: str | None,
             probe: str) -> Op[None]:
    """Bring every part's schema up to date and check the encryption key. ``probe`` is a
    query that finds stored payloads, which a key must not be added to."""
    if dialect == "postgres":
        yield Stmt(PG_LOCK)
    yield Stmt(META_DDL)
    meta = dict((yield Stmt("SELECT key, value FROM steward_meta")).rows)
    legacy = int(meta.get("schema_version", 0))
    if legacy > LAYOUT:
        raise ConfigError(
            f"database {url} has Steward schema version {legacy}, newer than this Steward "
            f"understands ({LAYOUT}): upgrade langgraph-steward to open it. Nothing was changed.")
    found = {s.part: s.found(meta.get(f"schema:{s.part}"), legacy) for s in schemas}
    for schema in schemas:
        if found[schema.part] > schema.version:
            raise ConfigError(
                f"database {url} has the {schema.part} tables at version {found[schema.part]}, "
                f"newer than this Steward understands ({schema.version}): upgrade "
                "langgraph-steward to open it. Nothing was changed.")
    stored = meta.get("key_fingerprint")
    if stored is not None and key_fingerprint is None:
        how = ("encryption_key=KmsKeys(...) or 'kms:<key id>' (its data keys are wrapped by "
               "a key service)" if stored == ENVELOPE_KEYS else "encryption_key=...")
        raise ConfigError(
            f"database {url} is encrypted: open it with steward.open(url, {how}) or set "
            "STEWARD_ENCRYPTION_KEY.")
    if stored is not None and stored != key_fingerprint:
        if stored == ENVELOPE_KEYS:
            raise ConfigError(
                f"database {url} is encrypted with a data key per thread, wrapped by a key "
                "service, not with one key: open it with encryption_key=KmsKeys(...) or "
                "'kms:<key id>'. Nothing was read or changed.")
        if key_fingerprint == ENVELOPE_KEYS:
            raise ConfigError(
                f"database {url} is encrypted with one key, not with data keys from a key "
                "service: open it with its original encryption_key (Steward does not move a "
                "database between the two). Nothing was read or changed.")
        raise ConfigError(
            f"the encryption key does not match the one database {url} was written with: "
            "use the original key. Nothing was read or changed.")
    if stored is None and key_fingerprint is not None and any(found.values()):
        if (yield Stmt(probe)).one():
            raise ConfigError(
                f"database {url} holds checkpoints written without encryption: open it without "
                "a key, or start a new database for encrypted threads. Nothing was changed.")
    for schema in schemas:
        for migration in schema.migrations[found[schema.part]:]:
            for stmt in statements(dialect, migration):
                yield Stmt(stmt)
        if meta.get(f"schema:{schema.part}") != str(schema.version):
            yield Stmt(_UPSERT, (f"schema:{schema.part}", str(schema.version)))
        if schema.ensure is not None:
            yield from schema.ensure(dialect)
    if legacy != LAYOUT:
        yield Stmt(_UPSERT, ("schema_version", str(LAYOUT)))
    if stored is None and key_fingerprint is not None:
        yield Stmt("INSERT INTO steward_meta (key, value) VALUES ('key_fingerprint', ?)",
                   (key_fingerprint,))
