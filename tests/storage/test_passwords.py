"""``steward.open(url, password=callable)``: the callable is asked for each new PostgreSQL
connection (the pools, the lease session, the check, the job queue), so a password that changes
between connections (an RDS IAM token) works; a wrong one, or a callable that fails, is a
ConfigError that never shows the password.

The role under test must give its password: the harness asks members of ``PASSWORD_GROUP``
for one (tests/_pg.py), where everyone else is trusted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _pg import PASSWORD_GROUP, PgServer
from _support import ALICE, approval_graph
from psycopg import sql

import steward
from steward.checkpointers.saver import StewardSaver
from steward.errors import ConfigError
from steward.storage.passwords import password_option

PG = pytest.mark.postgres


class Changing:
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


@pytest.fixture
def changing(pg_server: PgServer, pg_url: str) -> Iterator[Changing]:
    """A role that must give its password, owning the fresh database of ``pg_url``."""
    role = Changing(pg_server, pg_url)
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


def _renew(driver: Any) -> None:
    """Replace every connection the driver holds (sync): the next ones are new."""
    driver.pool.drain()
    driver.lazy.drain()
    driver.session.close()


@PG
def test_each_new_connection_asks_the_callable(changing: Changing) -> None:
    with steward.open(changing.url, password=changing, pool_size=2) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        assert rt.checkpointer.driver.holder()  # the lease session is open
        asked = changing.asked
        assert asked >= 4  # the check, a connection of each pool, the lease session

        changed = changing.change("second-Secret-B")
        # Open connections stay: the server checks a password when a connection opens.
        assert graph.get_state(rt.config("T1", ALICE)).next
        _renew(rt.checkpointer.driver)
        graph.invoke({"items": []}, rt.config("T2", ALICE))
        assert rt.checkpointer.driver.holder()
        assert changing.asked > asked + 2  # both pools and the session opened anew, with B
        started = changing.sessions_since()
        assert started and min(started) > changed  # every session of the role is a new one


@PG
async def test_the_async_driver_asks_the_callable_for_each_connection(
        changing: Changing) -> None:
    async with steward.aopen(changing.url, password=changing, pool_size=2) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("T1", ALICE))
        assert await rt.checkpointer.driver.aholder()
        asked = changing.asked
        changed = changing.change("second-Secret-B")
        driver: Any = rt.checkpointer.driver
        await driver.pool.drain()
        await driver.lazy.drain()
        driver.session.close()
        await graph.ainvoke({"items": []}, rt.config("T2", ALICE))
        assert await rt.checkpointer.driver.aholder()
        assert changing.asked > asked + 2
        started = changing.sessions_since()
        assert started and min(started) > changed


@PG
async def test_the_job_queue_asks_the_callable_too(changing: Changing) -> None:
    async with steward.aopen(changing.url, password=changing, pool_size=2) as rt:
        changing.change("second-Secret-B")  # the queue opens after: B or nothing
        queue = rt._queue()
        await queue.aapp()  # creates procrastinate's tables, then its async pool
        async with await queue.aconnect() as conn:  # the workers' reaper connection
            assert (await (await conn.execute("SELECT current_user")).fetchone()) == (
                changing.role,)
        assert queue.app().job_manager.list_jobs() == []  # the sync pool


@PG
def test_the_saver_alone_takes_the_callable(changing: Changing) -> None:
    with StewardSaver.from_conn_string(changing.url, password=changing) as saver:
        approval_graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "T"}})
    assert changing.asked >= 3


@PG
async def test_a_wrong_password_is_a_config_error_that_does_not_show_it(
        changing: Changing) -> None:
    def wrong() -> str:
        return "wrong-Secret-C"

    with pytest.raises(ConfigError, match="password authentication failed") as sync:
        steward.open(changing.url, password=wrong)
    with pytest.raises(ConfigError, match="password authentication failed") as async_:
        await steward.aopen(changing.url, password=wrong)
    for caught in (sync, async_):
        assert "wrong-Secret-C" not in str(caught.value)
        assert changing.role in str(caught.value)


# An address nothing listens on: each callable below fails before any connection is tried.
NOWHERE = "postgresql://app@127.0.0.1:9/db"


class TokenSource:
    def __call__(self) -> str:
        raise RuntimeError("no credentials in this test")


@pytest.mark.parametrize(("password", "says"), [
    (TokenSource(), "password= callable 'TokenSource' failed: RuntimeError: no credentials"),
    (lambda: None, "returned a NoneType: it must return the password"),
    (lambda: b"bytes-Secret", "returned a bytes"),
    (lambda: "", "returned an empty string"),
])
async def test_a_callable_that_fails_is_a_config_error_naming_it(password: Any,
                                                                  says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        steward.open(NOWHERE, password=password)
    assert "Secret" not in str(caught.value)
    with pytest.raises(ConfigError, match=says):
        await steward.aopen(NOWHERE, password=password)


def test_the_option_is_a_callable_or_a_str_and_only_for_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password= is an empty string"):
        steward.open(NOWHERE, password="")
    with pytest.raises(ConfigError, match="password= is for PostgreSQL"):
        steward.open(f"sqlite:///{tmp_path}/steward.db", password="a-Secret")
    with pytest.raises(ConfigError, match="password= is for PostgreSQL"):
        with StewardSaver.from_conn_string("sqlite://:memory:", password="a-Secret"):
            pass
    assert not list(tmp_path.iterdir())
    fixed = password_option("a-Secret")
    assert fixed is not None and fixed() == "a-Secret" and "Secret" not in repr(fixed)
    assert password_option(None) is None


@PG
def test_a_str_password_is_used_as_given(changing: Changing) -> None:
    with steward.open(changing.url, password=changing.current) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T", ALICE))
