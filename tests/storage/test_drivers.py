"""The PostgreSQL driver's reading of failures: a one-statement write that breaks one of the
keys it names as stale raises StaleView (the caller writes again the careful way); any other
failure is a StorageError naming the database, both for ``run`` and its twin ``arun``."""

from __future__ import annotations

from typing import Any

import pytest

from steward.errors import StorageError
from steward.storage.drivers import AsyncPostgresDriver, PostgresDriver
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
