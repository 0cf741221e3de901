"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _pg import PgServer, start_postgres


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
