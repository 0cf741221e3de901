"""From a database URL to a ready saver: the one path ``steward.open`` and
``StewardSaver.from_conn_string`` share.

The options are checked (URL, key, roles) before any database is touched; the schema is
created or migrated on the way in; the saver, then its driver, are closed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from steward.errors import ConfigError
from steward.identity import AccessRule
from steward.storage.crypto import Cipher
from steward.storage.drivers import AsyncPostgresDriver, Driver, PostgresDriver, SqliteDriver
from steward.storage.keys import KeySource, key_source
from steward.storage.passwords import Password
from steward.storage.url import DatabaseURL, parse_url

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver


def saver_options(*, encryption_key: KeySource | None = None,
                  thread_roles: Mapping[str, str] | None = None,
                  default_ttl: float | None = None, lease_ttl: float = 30.0,
                  trust_unidentified: bool = False) -> dict[str, Any]:
    """The saver's keyword arguments from ``steward.open``'s options (the key defaults to
    ``$STEWARD_ENCRYPTION_KEY``; see ``steward.storage.keys`` for what it may be)."""
    source = key_source(encryption_key)
    return {
        "cipher": source if isinstance(source, Cipher) else None,
        "data_keys": None if source is None or isinstance(source, Cipher) else source,
        "access": AccessRule.from_roles(thread_roles, trust_unidentified=trust_unidentified),
        "default_ttl": default_ttl,
        "lease_ttl": lease_ttl,
    }


def _database(url: str | DatabaseURL, password: Password | None) -> DatabaseURL:
    db = url if isinstance(url, DatabaseURL) else parse_url(url)
    if password is not None and db.backend != "postgres":
        raise ConfigError(f"password= is for PostgreSQL; {db.masked} is a SQLite database, "
                          "which takes none: leave password= out.")
    return db


@contextlib.contextmanager
def open_driver(url: str | DatabaseURL, pool_size: int,
                password: Password | None = None) -> Iterator[Driver]:
    """A driver on a sqlite3 connection or a psycopg ``ConnectionPool``, closed on exit;
    ``password`` is asked for each PostgreSQL connection (``steward.storage.passwords``)."""
    db = _database(url, password)
    if db.backend == "sqlite":
        driver: Driver = SqliteDriver(db.target, db.masked)
    else:
        driver = PostgresDriver(db.target, db.masked, pool_size=pool_size, password=password)
    try:
        yield driver
    finally:
        driver.close()


@contextlib.asynccontextmanager
async def aopen_driver(url: str | DatabaseURL, pool_size: int,
                       password: Password | None = None) -> AsyncIterator[Driver]:
    """A driver on sqlite3 (opened off the event loop: the LangGraph server forbids blocking
    it) or a psycopg ``AsyncConnectionPool`` bound to the running loop."""
    db = _database(url, password)
    if db.backend == "sqlite":
        sqlite = await asyncio.to_thread(SqliteDriver, db.target, db.masked)
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    pg = await AsyncPostgresDriver.connect(db.target, db.masked, pool_size=pool_size,
                                           password=password)
    try:
        yield pg
    finally:
        await pg.aclose()


@contextlib.contextmanager
def open_saver(cls: type[StewardSaver], url: str | DatabaseURL, pool_size: int,
               options: Mapping[str, Any],
               password: Password | None = None) -> Iterator[StewardSaver]:
    """A set-up saver alone (``StewardSaver.from_conn_string``)."""
    with open_driver(url, pool_size, password) as driver:
        saver = cls(driver, **options)
        try:
            saver.setup()
            yield saver
        finally:
            saver.close()


@contextlib.asynccontextmanager
async def aopen_saver(cls: type[StewardSaver], url: str | DatabaseURL, pool_size: int,
                      options: Mapping[str, Any],
                      password: Password | None = None) -> AsyncIterator[StewardSaver]:
    """The async twin of :func:`open_saver`."""
    async with aopen_driver(url, pool_size, password) as driver:
        saver = cls(driver, **options)
        try:
            await saver.asetup()
            yield saver
        finally:
            saver.close()
