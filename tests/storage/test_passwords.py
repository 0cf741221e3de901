"""``steward.open(url, password=callable)``: the callable is asked for each new PostgreSQL
connection (the pools, the lease session, the check, the job queue), so a password that changes
between connections (an RDS IAM token) works; a wrong one, or a callable that fails, is a
ConfigError that never shows the password.

The role under test must give its password (tests/_password_role.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _password_role import PasswordRole, password_role
from _pg import PgServer
from _support import ALICE, approval_graph

import steward
from steward.checkpointers.saver import StewardSaver
from steward.errors import ConfigError
from steward.storage.passwords import password_option

PG = pytest.mark.postgres


@pytest.fixture
def changing(pg_server: PgServer, pg_url: str) -> Iterator[PasswordRole]:
    """A role that must give its password, owning the fresh database of ``pg_url``."""
    with password_role(pg_server, pg_url) as role:
        yield role


def _renew(driver: Any) -> None:
    """Replace every connection the driver holds (sync): the next ones are new."""
    driver.pool.drain()
    driver.lazy.drain()
    driver.session.close()


@PG
def test_each_new_connection_asks_the_callable(changing: PasswordRole) -> None:
    with steward.open(changing.url, password=changing, pool_size=2) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        assert rt.checkpointer.driver.holder()  # the lease session is open
        asked = changing.asked
        assert asked >= 4  # the check, a connection of each pool, the lease session

        changed = changing.change("second-Secret-B")
        # Open connections stay: the server checks a password when a connection opens.
        assert graph.get_state(rt.config("T1", ALICE)).next
        _renew(rt.checkpointer.driver.inner)  # type: ignore[attr-defined]
        graph.invoke({"items": []}, rt.config("T2", ALICE))
        assert rt.checkpointer.driver.holder()
        assert changing.asked > asked + 2  # both pools and the session opened anew, with B
        started = changing.sessions_since()
        assert started and min(started) > changed  # every session of the role is a new one


@PG
async def test_the_async_driver_asks_the_callable_for_each_connection(
        changing: PasswordRole) -> None:
    async with steward.aopen(changing.url, password=changing, pool_size=2) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("T1", ALICE))
        assert await rt.checkpointer.driver.aholder()
        asked = changing.asked
        changed = changing.change("second-Secret-B")
        driver: Any = rt.checkpointer.driver.inner  # type: ignore[attr-defined]
        await driver.pool.drain()
        await driver.lazy.drain()
        driver.session.close()
        await graph.ainvoke({"items": []}, rt.config("T2", ALICE))
        assert await rt.checkpointer.driver.aholder()
        assert changing.asked > asked + 2
        started = changing.sessions_since()
        assert started and min(started) > changed


@PG
async def test_the_job_queue_asks_the_callable_too(changing: PasswordRole) -> None:
    async with steward.aopen(changing.url, password=changing, pool_size=2) as rt:
        changing.change("second-Secret-B")  # the queue opens after: B or nothing
        queue = rt._queue()
        await queue.aapp()  # creates procrastinate's tables, then its async pool
        async with await queue.aconnect() as conn:  # the workers' reaper connection
            assert (await (await conn.execute("SELECT current_user")).fetchone()) == (
                changing.role,)
        assert queue.app().job_manager.list_jobs() == []  # the sync pool


@PG
def test_the_saver_alone_takes_the_callable(changing: PasswordRole) -> None:
    with StewardSaver.from_conn_string(changing.url, password=changing) as saver:
        approval_graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "T"}})
    assert changing.asked >= 3


@PG
async def test_a_wrong_password_is_a_config_error_that_does_not_show_it(
        changing: PasswordRole) -> None:
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
def test_a_str_password_is_used_as_given(changing: PasswordRole) -> None:
    with steward.open(changing.url, password=changing.current) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T", ALICE))
