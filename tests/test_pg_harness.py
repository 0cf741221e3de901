"""The throwaway PostgreSQL harness (tests/_pg.py) itself."""

from __future__ import annotations

import psycopg
import pytest
from _pg import PgServer

pytestmark = pytest.mark.postgres


def test_databases_are_isolated(pg_server: PgServer) -> None:
    first, second = pg_server.create_database("iso"), pg_server.create_database("iso")
    try:
        with psycopg.connect(first) as conn:
            conn.execute("CREATE TABLE note (body text)")
            conn.execute("INSERT INTO note VALUES ('hello')")
            first_name = conn.info.dbname
        with psycopg.connect(first) as conn:
            assert conn.execute("SELECT body FROM note").fetchall() == [("hello",)]
        with psycopg.connect(second) as conn:
            assert conn.info.dbname != first_name
            assert conn.execute("SELECT to_regclass('public.note')").fetchone() == (None,)
    finally:
        pg_server.drop_database(first)
        pg_server.drop_database(second)
    with psycopg.connect(pg_server.admin_url) as conn:
        query = "SELECT count(*) FROM pg_database WHERE datname = %s"
        assert conn.execute(query, (first_name,)).fetchone() == (0,)


def test_fsync_is_on(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
