"""Every SQL statement the savers run, written once with ``?`` placeholders.

The two dialects differ only in a few fragments (row locking, JSON parameters, JSON lookups);
``Sql(dialect)`` fills them in. The Postgres driver turns ``?`` into ``%s``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import orjson

from steward.errors import ConfigError
from steward.storage.drivers import json_param

THREAD_INFO_COLS = (
    "thread_id, tenant, owner, status, waiting_on, created_at, updated_at, expires_at, "
    "lease_owner, lease_expires_at, lease_holder"
)
THREAD_COLS = (
    "tenant, owner, lease_owner, lease_expires_at, expires_at, status, waiting_on, waiting_at, "
    "rev, created_at, audit_seq, audit_head, resumed_by, lease_holder"
)
CHECKPOINT_COLS = (
    "c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, "
    "c.checkpoint, c.metadata, c.channel_versions"
)


def rows_json(rows: Sequence[Sequence[Any]], blob_at: int) -> str:
    """Rows as one JSON parameter (an array of row arrays, the bytes at ``blob_at`` in
    base64), read back with ``jsonb_array_elements``: psycopg adapts array parameters in
    Python, at several times the cost of orjson."""
    return orjson.dumps([(*row[:blob_at], base64.b64encode(row[blob_at]).decode(),
                          *row[blob_at + 1:]) for row in rows]).decode()


class Sql:
    def waits_on_roles(self, count: int) -> str:
        """A condition on a thread row: it waits on an approval one of ``count`` roles (bound
        as parameters) may vote on."""
        return self._waits_on_roles.format(", ".join("?" for _ in range(count)))

    def __init__(self, dialect: str) -> None:
        pg = dialect == "postgres"
        self.dialect = dialect
        j = json_param(dialect)
        self.json_param = j
        lock = " FOR UPDATE" if pg else ""
        # Pairs (channel, version) referenced by a checkpoint row ``c``.
        each = "jsonb_each_text(c.channel_versions)" if pg else "json_each(c.channel_versions)"

        self.select_thread = f"SELECT {THREAD_COLS} FROM steward_threads WHERE thread_id = ?"
        self.select_thread_for_update = self.select_thread + lock
        # Locks the thread's row until commit (Postgres; SQLite's BEGIN IMMEDIATE already
        # holds the database's write lock) without writing it.
        self.lock_thread = self.select_thread + lock
        # A write's first read creates the thread if it is new, so that locking it is one
        # round trip with it (the row a denied write created is rolled back with it).
        self.ensure_thread = (
            "INSERT INTO steward_threads (thread_id, tenant, owner, created_at, updated_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING"
        )
        # A new thread created with its first run's lease and subjects, in one statement
        # (Postgres; see Threads.fresh_op): no row comes back when the thread exists.
        self.fresh_lease = (
            "WITH ins AS (INSERT INTO steward_threads (thread_id, tenant, owner, created_at, "
            "updated_at, expires_at, lease_owner, lease_expires_at, lease_holder, lease_epoch, "
            "status, run_as, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) "
            "ON CONFLICT (thread_id) DO NOTHING RETURNING thread_id), "
            "subj AS (INSERT INTO steward_subjects (thread_id, subject, tenant, added_at) "
            "SELECT ?, s.subject, ?, ? FROM jsonb_array_elements_text(?::jsonb) AS s(subject) "
            "WHERE EXISTS (SELECT 1 FROM ins) ON CONFLICT (thread_id, subject) DO NOTHING) "
            "SELECT thread_id FROM ins"
        ) if pg else ""
        self.delete_thread = "DELETE FROM steward_threads WHERE thread_id = ?"
        self.thread_info = f"SELECT {THREAD_INFO_COLS} FROM steward_threads"
        # A thread waiting on an approval one of the roles bound after it may vote on.
        self._waits_on_roles = (
            "EXISTS (SELECT 1 FROM jsonb_array_elements(waiting_on) w, "
            "jsonb_array_elements_text(w->'roles') r WHERE r IN ({}))" if pg else
            "EXISTS (SELECT 1 FROM json_each(waiting_on) w, json_each(w.value, '$.roles') r "
            "WHERE r.value IN ({}))")
        self.renew_lease = (
            "UPDATE steward_threads SET lease_expires_at = ? "
            "WHERE thread_id = ? AND lease_owner = ?"
        )
        # An approver's reach (resumed_by) ends with the run their vote resumed.
        self.release_lease = (
            "UPDATE steward_threads SET lease_owner = NULL, lease_expires_at = NULL, "
            "lease_holder = NULL, resumed_by = NULL, "
            "status = CASE WHEN waiting_on IS NULL THEN 'idle' ELSE 'interrupted' END, "
            "updated_at = ?, rev = rev + 1 WHERE thread_id = ? AND lease_owner = ?"
        )
        self.expired_threads = (
            "SELECT thread_id FROM steward_threads WHERE expires_at < ? "
            "AND (lease_owner IS NULL OR lease_expires_at < ?)"
        )

        self.insert_blobs = (
            "INSERT INTO steward_blobs (thread_id, checkpoint_ns, channel, version, type, blob, "
            "base_version, keep, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
        )
        # A delta's base must still be there when it is written (another process may have
        # pruned it): Postgres fails the transaction (division by zero) without a round trip,
        # SQLite answers in-process.
        _base = (
            "SELECT count(*) FROM steward_blobs WHERE thread_id = ? AND checkpoint_ns = ? "
            "AND channel = ? AND version = ?"
        )
        self.base_exists = _base
        self.assert_base = f"SELECT 1 / ({_base})::int"
        self.delta_blobs_in_use = (
            "SELECT b.checkpoint_ns, b.channel, b.version, b.type, b.blob, b.base_version "
            "FROM steward_blobs b WHERE b.thread_id = ? AND b.base_version IS NOT NULL AND "
            "(b.checkpoint_ns, b.channel, b.version) IN ("
            f"SELECT c.checkpoint_ns, j.key, j.value FROM steward_checkpoints c, {each} AS j "
            "WHERE c.thread_id = ?)"
        )
        self.store_whole = (
            "UPDATE steward_blobs SET type = ?, blob = ?, base_version = NULL, keep = NULL, "
            "depth = 0 WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
        )
        self.upsert_checkpoint = (
            "INSERT INTO steward_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
            "parent_checkpoint_id, run_id, type, checkpoint, metadata, channel_versions) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, {j}, {j}) "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
            "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, "
            "type = excluded.type, checkpoint = excluded.checkpoint, "
            "metadata = excluded.metadata, channel_versions = excluded.channel_versions"
        )
        _writes = (
            "INSERT INTO steward_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, "
            "channel, type, blob, task_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) "
        )
        self.insert_writes = _writes + "DO NOTHING"
        # A run's held task writes (riding) inside a one-statement write (Postgres), as one
        # JSON parameter (rows_json), under the write's thread-row guard ``ok``.
        self.ride_cte = (
            ", ride AS (INSERT INTO steward_writes (thread_id, checkpoint_ns, checkpoint_id, "
            "task_id, idx, channel, type, blob, task_path) SELECT ?, u->>0, u->>1, u->>2, "
            "(u->>3)::int, u->>4, u->>5, decode(u->>6, 'base64'), u->>7 "
            "FROM jsonb_array_elements(?::jsonb) AS u WHERE (SELECT ok FROM ok) = 1 "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING) "
        )
        # Special channels (__error__, __interrupt__, ...) have fixed indexes: a later write
        # of the same special channel by the same task replaces the earlier one.
        self.upsert_writes = _writes + (
            "DO UPDATE SET channel = excluded.channel, type = excluded.type, "
            "blob = excluded.blob, task_path = excluded.task_path"
        )
        self.select_checkpoint = (
            f"SELECT {CHECKPOINT_COLS} FROM steward_checkpoints c "
            "WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ?"
        )
        self.select_latest = (
            f"SELECT {CHECKPOINT_COLS} FROM steward_checkpoints c "
            "WHERE c.thread_id = ? AND c.checkpoint_ns = ? ORDER BY c.checkpoint_id DESC LIMIT 1"
        )
        # The writes of the latest checkpoint of a namespace, read with it (select_latest).
        self.select_latest_writes = (
            "SELECT task_id, channel, type, blob, task_path, idx FROM steward_writes "
            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = (SELECT "
            "max(checkpoint_id) FROM steward_checkpoints WHERE thread_id = ? AND "
            "checkpoint_ns = ?)"
        )
        self.list_prefix = f"SELECT {CHECKPOINT_COLS} FROM steward_checkpoints c"
        self.select_writes = (
            "SELECT task_id, channel, type, blob, task_path, idx FROM steward_writes "
            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
        )

        self.delete_null_resume = (
            "DELETE FROM steward_writes WHERE thread_id = ? AND checkpoint_ns = ? AND "
            "checkpoint_id = ? AND task_id = ? AND channel = ?"
        )
        self.delete_thread_rows = [
            "DELETE FROM steward_subjects WHERE thread_id = ?",
            "DELETE FROM steward_writes WHERE thread_id = ?",
            "DELETE FROM steward_blobs WHERE thread_id = ?",
            "DELETE FROM steward_checkpoints WHERE thread_id = ?",
        ]
        self.threads_of_runs = "SELECT DISTINCT thread_id FROM steward_checkpoints WHERE run_id IN "
        self.delete_writes_of_runs = (
            "DELETE FROM steward_writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
            "(SELECT thread_id, checkpoint_ns, checkpoint_id FROM steward_checkpoints "
            "WHERE run_id IN "
        )
        self.delete_checkpoints_of_runs = "DELETE FROM steward_checkpoints WHERE run_id IN "
        _latest = (
            "(SELECT checkpoint_ns, MAX(checkpoint_id) FROM steward_checkpoints "
            "WHERE thread_id = ? GROUP BY checkpoint_ns)"
        )
        self.prune_writes = (
            "DELETE FROM steward_writes WHERE thread_id = ? AND "
            f"(checkpoint_ns, checkpoint_id) NOT IN {_latest}"
        )
        self.prune_checkpoints = (
            "DELETE FROM steward_checkpoints WHERE thread_id = ? AND "
            f"(checkpoint_ns, checkpoint_id) NOT IN {_latest}"
        )
        # A blob is garbage once no checkpoint of its thread refers to it, directly or as the
        # base of a delta that one refers to.
        self.gc_blobs = (
            "DELETE FROM steward_blobs WHERE thread_id = ? AND "
            "(checkpoint_ns, channel, version) NOT IN ("
            "WITH RECURSIVE live(ns, channel, version) AS ("
            f"SELECT c.checkpoint_ns, j.key, j.value FROM steward_checkpoints c, {each} AS j "
            "WHERE c.thread_id = ? "
            "UNION SELECT b.checkpoint_ns, b.channel, b.base_version FROM steward_blobs b "
            "JOIN live ON b.checkpoint_ns = live.ns AND b.channel = live.channel "
            "AND b.version = live.version WHERE b.thread_id = ? AND b.base_version IS NOT NULL) "
            "SELECT ns, channel, version FROM live)"
        )
        self.insert_subject = (
            "INSERT INTO steward_subjects (thread_id, subject, tenant, added_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, subject) DO NOTHING")
        self.copy_subjects = (
            "INSERT INTO steward_subjects (thread_id, subject, tenant, added_at) "
            "SELECT ?, subject, tenant, added_at FROM steward_subjects WHERE thread_id = ? "
            "ON CONFLICT (thread_id, subject) DO NOTHING")
        self.copy_rows = [
            "INSERT INTO steward_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
            "parent_checkpoint_id, run_id, type, checkpoint, metadata, channel_versions) "
            "SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, "
            "checkpoint, metadata, channel_versions FROM steward_checkpoints WHERE thread_id = ? "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING",
            "INSERT INTO steward_blobs (thread_id, checkpoint_ns, channel, version, type, blob, "
            "base_version, keep, depth) SELECT ?, checkpoint_ns, channel, version, type, blob, "
            "base_version, keep, depth FROM steward_blobs WHERE thread_id = ? "
            "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING",
            "INSERT INTO steward_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, "
            "channel, type, blob, task_path) SELECT ?, checkpoint_ns, checkpoint_id, task_id, "
            "idx, channel, type, blob, task_path FROM steward_writes WHERE thread_id = ? "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING",
        ]

        self.copy_select = [
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, "
            "checkpoint, metadata, channel_versions FROM steward_checkpoints WHERE thread_id = ?",
            "SELECT checkpoint_ns, channel, version, type, blob, base_version, keep, depth "
            "FROM steward_blobs WHERE thread_id = ?",
            "SELECT checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path "
            "FROM steward_writes WHERE thread_id = ?",
        ]

    # -- Postgres: a whole write in one statement (see writing.put_op) ------------------------

    def _guarded(self, leased: bool, bases: bool) -> str:
        """CTEs ``ok`` (the thread-row guard: revision, incarnation and fence) and ``bases``
        (every delta's base is there, when a write has deltas); both divide by zero, failing
        the statement, when they do not hold."""
        fence = "lease_owner = ?" if leased else "(lease_owner IS NULL OR lease_expires_at <= ?)"
        check = (
            "bases AS (SELECT 1 / (CASE WHEN (SELECT count(*) FROM "
            "steward_blobs b JOIN jsonb_array_elements(?::jsonb) AS x "
            "ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = x->>0 "
            "AND b.version = x->>1) = ? THEN 1 ELSE 0 END) AS ok) "
        ) if bases else "bases AS (SELECT 1 AS ok) "
        return (
            "WITH ok AS (SELECT 1 / (SELECT count(*) FROM (SELECT 1 FROM steward_threads "
            f"WHERE thread_id = ? AND rev = ? AND created_at = ? AND {fence} FOR UPDATE) AS g"
            ")::int AS ok), " + check
        )

    @staticmethod
    def guarded_params(tid: str, ns: str, rev: int, incarnation: float, fence: Any,
                       bases: Sequence[tuple[str, str]]) -> tuple[Any, ...]:
        """The parameters of ``_guarded``, in its placeholders' order: the thread row's
        revision and incarnation as this process saw them, the fence (the lease holder, or
        now), and the (channel, version) delta bases that must exist (none: no check, and no
        array to send: psycopg's array dumpers cost more than the statement's own work)."""
        if not bases:
            return (tid, rev, incarnation, fence)
        return (tid, rev, incarnation, fence, orjson.dumps(list(bases)).decode(), tid, ns,
                len(bases))

    def put_alone(self, leased: bool, joined: str = "", *, blobs: bool = True,
                  bases: bool = False) -> str:
        """``joined``: the CTEs of the rows that join the write (WriteParticipant.joined);
        ``blobs``: whether values are stored beside the checkpoint row; ``bases``: whether
        some of them are deltas whose bases must exist."""
        values = (
            ", blobs AS (INSERT INTO steward_blobs (thread_id, checkpoint_ns, channel, version, "
            "type, blob, base_version, keep, depth) SELECT ?, ?, u->>0, u->>1, u->>2, "
            "decode(u->>3, 'base64'), u->>4, (u->>5)::int, (u->>6)::int "
            "FROM jsonb_array_elements(?::jsonb) AS u "
            "WHERE (SELECT ok FROM ok) = 1 AND (SELECT ok FROM bases) = 1 "
            "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING) "
        ) if blobs else " "
        return (
            self._guarded(leased, bases) + joined + values
            + "INSERT INTO steward_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
            "parent_checkpoint_id, run_id, type, checkpoint, metadata, channel_versions) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb "
            "WHERE (SELECT ok FROM ok) = 1 AND (SELECT ok FROM bases) = 1 "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
            "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, "
            "type = excluded.type, checkpoint = excluded.checkpoint, "
            "metadata = excluded.metadata, channel_versions = excluded.channel_versions"
        )

    def release_alone(self, joined: str, sets: Sequence[str]) -> str:
        """A run's end in one statement (Postgres): the lease given back, guarded by the
        holder (a lost lease divides by zero: StaleView), with the rows that join it
        (``joined``) and the thread-row columns they set (``sets``, their values bound after
        the release's own)."""
        extra = "".join(f", {column} = ?" for column in sets)
        return (
            "WITH ok AS (SELECT 1 / (SELECT count(*) FROM (SELECT 1 FROM steward_threads "
            "WHERE thread_id = ? AND lease_owner = ? FOR UPDATE) AS g)::int AS ok) " + joined
            + "UPDATE steward_threads SET lease_owner = NULL, lease_expires_at = NULL, "
            "lease_holder = NULL, resumed_by = NULL, "
            "status = CASE WHEN waiting_on IS NULL THEN 'idle' ELSE 'interrupted' END, "
            f"updated_at = ?, rev = rev + 1{extra} "
            "WHERE thread_id = ? AND lease_owner = ? AND (SELECT ok FROM ok) = 1"
        )

    def writes_alone(self, leased: bool, special: bool, joined: str = "") -> str:
        action = ("DO UPDATE SET channel = excluded.channel, type = excluded.type, "
                  "blob = excluded.blob, task_path = excluded.task_path") if special \
            else "DO NOTHING"
        return (
            self._guarded(leased, False) + joined
            + "INSERT INTO steward_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, "
            "idx, channel, type, blob, task_path) SELECT ?, ?, ?, ?, (u->>0)::int, u->>1, "
            "u->>2, decode(u->>3, 'base64'), ? FROM jsonb_array_elements(?::jsonb) AS u "
            "WHERE (SELECT ok FROM ok) = 1 AND (SELECT ok FROM bases) = 1 "
            f"ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {action}"
        )

    def select_values(self, n: int) -> str:
        """The blobs of ``n`` (channel, version) pairs with their delta chains: rows of
        (channel, head version, version, keep, type, blob, depth). Parameters: thread_id,
        checkpoint_ns, the n pairs, then thread_id and checkpoint_ns again."""
        pairs = ", ".join("(?, ?)" for _ in range(max(n, 1)))
        cols = "b.version, b.base_version, b.keep, b.type, b.blob, b.depth"
        if self.dialect == "postgres":
            # One primary-key lookup per value and per link, whatever the planner's statistics
            # say: OFFSET 0 keeps each LATERAL lookup from being flattened into a join, which
            # without statistics walks all of the thread's blobs at every step.
            lookup = ("CROSS JOIN LATERAL (SELECT {cols} FROM steward_blobs b "
                      "WHERE b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = {ch} "
                      "AND b.version = {ver} OFFSET 0) AS b")
            anchor = (f"SELECT v.channel, v.version, {cols} FROM (VALUES {pairs}) "
                      "AS v(channel, version) "
                      + lookup.format(cols=cols, ch="v.channel", ver="v.version"))
            step = ("SELECT chain.channel, chain.head, " + cols + " FROM chain "
                    + lookup.format(cols=cols, ch="chain.channel", ver="chain.base_version"))
            # the anchor takes the pairs first: reorder its parameters in select_values_params
        else:
            anchor = (f"SELECT channel, version, {cols.replace('b.', '')} FROM steward_blobs "
                      "WHERE thread_id = ? AND checkpoint_ns = ? AND "
                      f"(channel, version) IN (VALUES {pairs})")
            step = (f"SELECT chain.channel, chain.head, {cols} FROM chain JOIN steward_blobs b "
                    "ON b.channel = chain.channel AND b.version = chain.base_version "
                    "WHERE b.thread_id = ? AND b.checkpoint_ns = ?")
        return (
            "WITH RECURSIVE chain(channel, head, version, base_version, keep, type, blob, depth) "
            f"AS ({anchor} UNION ALL {step}) "
            "SELECT channel, head, version, keep, type, blob, depth FROM chain"
        )

    def select_values_params(self, tid: str, ns: str, pairs: list[Any]) -> list[Any]:
        """The parameters of ``select_values`` in the order the dialect's SQL takes them."""
        if self.dialect == "postgres":
            return [*pairs, tid, ns, tid, ns]
        return [tid, ns, *pairs, tid, ns]

    def metadata_filter(self, key: str, value: Any) -> tuple[str, list[Any]]:
        """A WHERE fragment for ``metadata[key] == value`` (top-level, typed equality)."""
        if not isinstance(key, str) or not key or any(c in key for c in "\"'\\?"):
            raise ConfigError(
                f"metadata filter key {key!r} is not allowed: use a non-empty string without "
                "quotes, backslashes or question marks."
            )
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(
                f"metadata filter {key!r}={value!r}: only str, int, float, bool and None values "
                "can be matched; filter nested values in Python."
            )
        if self.dialect == "postgres":  # served by the GIN index on metadata
            return f"c.metadata @> {self.json_param}", [json.dumps({key: value})]
        # The path is a literal (the key was checked above) so that SQLite can use the
        # expression indexes on json_extract(metadata, '$."<key>"').
        path = f"'$.\"{key}\"'"
        if value is None:
            return f"json_type(c.metadata, {path}) = 'null'", []
        if isinstance(value, bool):
            return f"json_type(c.metadata, {path}) = ?", ["true" if value else "false"]
        kinds = "('text')" if isinstance(value, str) else "('integer', 'real')"
        return (f"(json_extract(c.metadata, {path}) = ? AND "
                f"json_type(c.metadata, {path}) IN {kinds})", [value])
