"""The PostgreSQL driver's reading of failures: a one-statement write that breaks one of the
keys it names as stale raises StaleView (the caller writes again the careful way); any other
failure is a StorageError naming the database, both for ``run`` and its twin ``arun``."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

import steward
from steward.errors import StorageError
from steward.storage.drivers import AsyncPostgresDriver, PostgresDriver, SqliteDriver
from steward.storage.ops import StaleView, Stmt
from steward.storage.url import parse_url

pytestmark = pytest.mark.postgres


def _insert(stale: frozenset[str]) -> Any:
    yield Stmt("INSERT INTO t (k) VALUES (1)", alone=True, stale_keys=stale)


def _setup() -> Any:
    yield Stmt("CREATE TABLE t (k INT CONSTRAINT t_key PRIMARY KEY)")
    yield Stmt("INSERT INTO t (k) VALUES (1)")


def _divide() -> Any:
    yield Stmt("SELECT 1 / 0")


async def test_stale_keys_and_guards_are_stale_views_other_failures_storage_errors(
        pg_url: str) -> None:
    db = parse_url(pg_url)
    sync = PostgresDriver(db.target, db.masked, pool_size=2)
    async_ = await AsyncPostgresDriver.connect(db.target, db.masked, pool_size=2)
    try:
        sync.run(_setup(), write=True)
        with pytest.raises(StaleView):
            sync.run(_insert(frozenset({"t_key"})), write=True)
        with pytest.raises(StaleView):
            await async_.arun(_insert(frozenset({"t_key"})), write=True)
        for stale in (frozenset(), frozenset({"another_key"})):
            with pytest.raises(StorageError, match=r"PostgreSQL at .* failed"):
                sync.run(_insert(stale), write=True)
            with pytest.raises(StorageError, match=r"PostgreSQL at .* failed"):
                await async_.arun(_insert(stale), write=True)
        with pytest.raises(StaleView):  # a guard statement dividing by zero
            sync.run(_divide(), write=False)
        with pytest.raises(StaleView):
            await async_.arun(_divide(), write=False)
    finally:
        sync.close()
        await async_.aclose()


def _writing_in_rollback_mode(path: str) -> sqlite3.Connection:
    """A connection of another process's kind, setting a new database up before it is in
    WAL mode: its write transaction makes SQLite refuse a switch to WAL at once."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE first (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO first VALUES (1)")
    return other


def test_opening_a_database_another_process_is_setting_up_waits_for_it(tmp_path: Any) -> None:
    path = str(tmp_path / "new.db")
    other = _writing_in_rollback_mode(path)
    threading.Timer(0.3, other.execute, ("COMMIT",)).start()  # its setup done, a moment later
    started = time.monotonic()
    with steward.open(f"sqlite:///{path}") as rt:
        assert time.monotonic() - started >= 0.25
        rt.checkpointer.acquire_lease("T1", "run-1", None)  # a working runtime
        rt.checkpointer.release_lease("T1", "run-1")
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT x FROM first").fetchall() == [(1,)]  # theirs kept
    other.close()


def test_a_database_that_stays_locked_while_opening_is_a_storage_error(tmp_path: Any) -> None:
    path = str(tmp_path / "new.db")
    other = _writing_in_rollback_mode(path)
    with pytest.raises(StorageError, match=r"stayed locked for 0.2 s while opening.*Retry"):
        SqliteDriver(path, f"sqlite:///{path}", busy_timeout=0.2)
    other.execute("ROLLBACK")
    other.close()
    SqliteDriver(path, f"sqlite:///{path}", busy_timeout=0.2).close()  # free again: it opens
