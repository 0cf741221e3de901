"""A PostgreSQL login role that must give its password, which a test may change: for the
tests of ``steward.open(url, password=...)`` (tests/storage/test_passwords.py,
tests/aws/test_rds.py). The harness asks members of ``PASSWORD_GROUP`` for their password
(tests/_pg.py); everyone else is trusted.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _pg import PASSWORD_GROUP, PgServer
from psycopg import sql


class PasswordRole:
    """A login role whose password the test changes, and the callable that knows it: it
    returns the current password and counts how often it was asked."""

    def __init__(self, server: PgServer, db_url: str) -> None:
        self.server = server
        self.db_url = db_url
        self.role = f"pw_{uuid.uuid4().hex[:10]}"
        parts = urlsplit(db_url)
        self.url = urlunsplit(parts._replace(netloc=f"{self.role}@"))  # no password in it
        self.db = parts.path.lstrip("/")
        self.current = "first-Secret-A"
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return self.current

    def create(self) -> None:
        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            try:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(
                    sql.Identifier(PASSWORD_GROUP)))
            except psycopg.errors.DuplicateObject:
                pass
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(self.role), sql.Literal(self.current),
                sql.Identifier(PASSWORD_GROUP)))
            # The owner of the database may create Steward's tables in its public schema.
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(self.db), sql.Identifier(self.role)))

    def change(self, password: str) -> Any:
        """The role's new password, from now on what the callable returns; the server's time
        of the change."""
        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(self.role), sql.Literal(password)))
            self.current = password
            return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]

    def sessions_since(self) -> list[Any]:
        """When each of the role's open sessions started."""
        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT backend_start FROM pg_stat_activity WHERE usename = %s",
                                (self.role,)).fetchall()
        return [r[0] for r in rows]

    def drop(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:  # as the admin
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(
                sql.Identifier(self.role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(self.role)))
        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (self.role,))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(self.role)))


@contextlib.contextmanager
def password_role(server: PgServer, db_url: str) -> Iterator[PasswordRole]:
    """A role that must give its password, owning the fresh database of ``db_url``; dropped
    afterwards. Skips the test on a server (``STEWARD_TEST_PG_URL``) that lets it in without."""
    role = PasswordRole(server, db_url)
    role.create()
    try:
        try:
            psycopg.connect(role.url, password="not-the-password").close()
        except psycopg.OperationalError:
            pass  # refused: the server asks this role for its password
        else:
            pytest.skip(f"this server lets {role.role} in without its password: it needs "
                        f"`local all +{PASSWORD_GROUP} scram-sha-256` first in pg_hba.conf")
        yield role
    finally:
        role.drop()
