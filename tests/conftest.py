"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _pg import PgServer, start_postgres
from _support import ROLES

import steward


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the whole session (see tests/_pg.py)."""
    with start_postgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty database for one test; dropped afterwards."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each backend: a SQLite file, or a new Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/steward.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def rt(db_url: str) -> Iterator[steward.Runtime]:
    """A runtime on each backend, with the test roles granted (see _support.ROLES)."""
    with steward.open(db_url, thread_roles=ROLES, lease_ttl=5) as runtime:
        yield runtime
