"""Drivers run operations (see ``ops``) inside one database transaction each.

- ``SqliteDriver``: one sqlite3 connection in WAL mode behind a lock; async calls go through
  ``asyncio.to_thread`` because sqlite3 has no async API.
- ``PostgresDriver``: a psycopg ``ConnectionPool``; async calls go through ``asyncio.to_thread``.
- ``AsyncPostgresDriver``: a psycopg ``AsyncConnectionPool``; sync calls from other threads are
  bridged onto the pool's event loop once, here.

Both PostgreSQL drivers take an optional ``password`` callable (``steward.storage.passwords``),
asked for each connection they open: the check, every pooled connection, the lease session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from steward.errors import ConfigError, StorageError
from steward.storage.liveness import PgSession, local_token
from steward.storage.ops import Batch, Call, Op, Result, StaleView, Stmt, adrive, drive, finish
from steward.storage.passwords import Password, apool_kwargs, ask, pool_kwargs

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

T = TypeVar("T")

_INSTALL_PG = "install the PostgreSQL extra: pip install 'langgraph-steward[postgres]'"


class Driver(Protocol):
    """Runs an operation in one transaction.

    ``write`` opens a write transaction; ``durable=False`` lets its commit return before the
    commit is flushed to disk. Such a commit still survives a crash of this process, and the
    next durable commit makes it durable too, because both databases write their log in
    commit order and a flush covers everything before it (see StewardSaver.put_writes).
    """

    dialect: str
    url: str  # masked, safe to print
    optimistic: bool  # guards inside its statements may raise StaleView (Sql._guarded)

    def run(self, op: Op[T], *, write: bool, durable: bool = True) -> T: ...

    async def arun(self, op: Op[T], *, write: bool, durable: bool = True) -> T: ...

    def holder(self) -> str:
        """This process as a lease holder, so that others can tell when it is gone
        (``storage.liveness``)."""
        ...

    async def aholder(self) -> str: ...

    def close(self) -> None: ...


class SqliteDriver:
    dialect = "sqlite"
    optimistic = False  # reads are in-process and cheap: no need to guess

    def __init__(self, path: str, url: str, *, busy_timeout: float = 10.0) -> None:
        self.url = url
        self.memory = path == ":memory:"
        # A named shared-cache database lets LangGraph's store open a second connection to it.
        self.target = f"file:steward-{uuid.uuid4().hex}?mode=memory&cache=shared" if self.memory \
            else path
        self.conn = self._open(busy_timeout, "FULL")
        try:
            # A second connection for commits that need not be flushed (synchronous=NORMAL):
            # cheaper than switching the pragma back and forth on one connection. Both share
            # one WAL, so the next FULL commit on ``conn`` flushes ``fast``'s commits too.
            self.fast = self.conn if self.memory else self._open(busy_timeout, "NORMAL")
        except BaseException:
            self.conn.close()
            raise
        self.lock = threading.RLock()

    def _open(self, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.target, check_same_thread=False, isolation_level=None,
                                   uri=self.memory, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise self._unopened(exc) from exc
        try:
            if not self.memory:
                self._wal(conn, busy_timeout)
            conn.execute(f"PRAGMA synchronous={synchronous}")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._unopened(exc) from exc
            raise
        return conn

    def _unopened(self, exc: sqlite3.Error) -> ConfigError:
        return ConfigError(f"cannot open SQLite database {self.url}: {exc}. Check that the "
                           "directory exists and is writable.")

    def _wal(self, conn: sqlite3.Connection, patience: float) -> None:
        """Put the database in WAL mode. While another connection writes a database still in
        its first (rollback) mode -- processes opening a new database at once, one of them
        already setting it up -- SQLite refuses the switch at once, without waiting its busy
        timeout (to avoid a deadlock): wait here instead, as long as that timeout."""
        deadline = time.monotonic() + patience
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"SQLite database {self.url} stayed locked for {patience:g} s while "
                        "opening: another process is writing it. Retry.") from exc
            time.sleep(0.01)

    def run(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        # WAL mode: FULL fsyncs the log at commit; NORMAL leaves the commit in the OS cache
        # (safe from a process crash) until the next FULL commit or checkpoint.
        conn = self.fast if write and not durable else self.conn

        def execute(stmts: Sequence[Stmt]) -> list[Result]:
            results = []
            for stmt in stmts:
                if stmt.many:
                    cur = conn.executemany(stmt.sql, stmt.params)
                else:
                    cur = conn.execute(stmt.sql, stmt.params)
                rows = cur.fetchall() if cur.description else []
                results.append(Result(rows, cur.rowcount))
            return results

        with self.lock:
            try:
                # IMMEDIATE takes the write lock up front: no deadlock when two processes
                # both read first and then want to write.
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite database {self.url} is unavailable: {exc}. "
                                   "Retry; another process may hold it locked.") from exc
            try:
                result = drive(op, execute)
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"SQLite database {self.url} failed: {exc}.") from exc
                raise
            conn.execute("COMMIT")
            return result

    async def arun(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        return await asyncio.to_thread(self.run, op, write=write, durable=durable)

    def holder(self) -> str:
        return local_token()

    async def aholder(self) -> str:
        return local_token()

    def close(self) -> None:
        with self.lock:
            if self.fast is not self.conn:
                self.fast.close()
            self.conn.close()


# Reads run without a transaction around them: a read operation makes at most two round
# trips (a thread's identity with the checkpoint, then its values with its writes), each one
# statement per table with its own snapshot, and what a write changes it changes atomically.
# A thread deleted between the two shows as missing values, as with the stock savers.

# The commit of this transaction returns before its WAL is flushed; the next synchronous
# commit's flush covers it (Postgres writes and flushes its WAL in order).

_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection
_LAZY_OPTIONS = "-c synchronous_commit=off"


def json_param(dialect: str) -> str:
    """The placeholder of a JSON parameter: PostgreSQL casts the text to jsonb."""
    return "?::jsonb" if dialect == "postgres" else "?"


def _pg_failure(exc: Exception, url: str, first: Stmt | Batch | Call | None) -> Exception:
    """What a PostgreSQL error means to Steward: a guard statement that divided by zero, or a
    one-statement write that broke one of its ``stale_keys``, found the view it was built
    from stale (StaleView: run it again the careful way); anything else is a StorageError."""
    import psycopg

    if isinstance(exc, psycopg.errors.DivisionByZero):
        return StaleView()  # a guard statement failed: see Threads.fast_view
    if isinstance(exc, psycopg.errors.UniqueViolation) and isinstance(first, Stmt) \
            and exc.diag.constraint_name in first.stale_keys:
        return StaleView()  # another writer moved on (e.g. an audit chain: AuditLog.joined)
    return StorageError(f"PostgreSQL at {url} failed: {exc}.")


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    if "%" in sql:
        raise AssertionError(f"literal % in SQL: {sql}")
    return sql.replace("?", "%s")


def _without_password(text: str, conninfo: str, also: str | None = None) -> str:
    """``text`` (libpq's words, which may echo what it could not parse) with the password of
    ``conninfo`` replaced by ``***``: as libpq parses it, and as written in a URL's user info;
    and ``also``, a password given apart from the URL."""
    import psycopg.conninfo

    secrets = {also or ""}
    with contextlib.suppress(Exception):
        secrets.add(str(psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or ""))
    head = conninfo.partition("?")[0]
    at = head.rfind("@")
    if at != -1:
        start = head.find("//")
        secrets.add(head[start + 2 if start != -1 else 0:at].partition(":")[2])
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _pg_check(conninfo: str, url: str, timeout: int, password: Password | None = None) -> None:
    """Connect once, directly, so an unreachable server (or a wrong password) fails fast with
    libpq's own reason."""
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError(f"{url} needs psycopg: {_INSTALL_PG}.") from exc
    secret = ask(password) if password is not None else None
    try:
        psycopg.connect(conninfo, connect_timeout=timeout, password=secret).close()
    except psycopg.Error as exc:
        # libpq's reason, one line per host tried, without its own hint (the advice below
        # says it) and without a stop of its own.
        lines = [line.strip() for line in str(exc).splitlines()]
        reason = "; ".join(line for line in lines
                           if line and not line.startswith("Is the server running"))
        reason = _without_password(reason.rstrip("."), conninfo, secret)
        raise ConfigError(
            f"cannot connect to PostgreSQL at {url}: {reason or type(exc).__name__}. "
            "Check that the server is running, the host, port, database and credentials are "
            "right, and the database exists."
        ) from exc


class PostgresDriver:
    dialect = "postgres"
    optimistic = True

    def __init__(self, conninfo: str, url: str, *, pool_size: int = 10,
                 connect_timeout: int = 5, password: Password | None = None) -> None:
        self.url = url
        _pg_check(conninfo, url, connect_timeout, password)
        from psycopg_pool import ConnectionPool

        self.pool: ConnectionPool[Any] = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=False, name="steward",
            kwargs=pool_kwargs(password, autocommit=True, connect_timeout=connect_timeout),
        )
        # Single-statement writes that need not wait for the flush run on connections whose
        # commits do not wait (see _ASYNC_COMMIT for why that is safe).
        self.lazy: ConnectionPool[Any] = ConnectionPool(
            conninfo, min_size=1, max_size=max(2, pool_size // 2), open=False,
            name="steward-lazy", kwargs=pool_kwargs(password, autocommit=True,
                                                    connect_timeout=connect_timeout,
                                                    options=_LAZY_OPTIONS),
        )
        self.pool.open(wait=True, timeout=connect_timeout * 2)
        self.lazy.open(wait=True, timeout=connect_timeout * 2)
        self.session = PgSession(conninfo, connect_timeout, password)

    def holder(self) -> str:
        return self.session.token()

    async def aholder(self) -> str:
        return await self.session.atoken()

    def run(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        import psycopg

        first: Stmt | Batch | Call | None = None
        try:
            try:
                first = next(op)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(first, Stmt) and first.alone:
                try:
                    with (self.pool if durable else self.lazy).connection() as conn:
                        cur = conn.execute(_pg_sql(first.sql), first.params)
                        done = Result(cur.fetchall() if cur.description else [], cur.rowcount)
                except BaseException:
                    op.close()  # the operation puts back what it took
                    raise
                return finish(op, done)
            # Pipeline mode, one pipeline per exchange: statements whose results the
            # operation does not need wait (unsent) for the next statement that does; BEGIN,
            # SET LOCAL and the first statement travel together, COMMIT carries whatever is
            # still queued, and leaving each pipeline is its one round trip (its Sync).
            with self.pool.connection() as conn:
                queued: list[str] = []
                if write:
                    queued.append("BEGIN")
                    if not durable:
                        queued.append(_ASYNC_COMMIT)

                def send(stmts: Sequence[Stmt], last: str | None = None) -> list[Any]:
                    cursors = []
                    with conn.pipeline():
                        for sql in queued:
                            conn.cursor().execute(sql)
                        queued.clear()
                        for stmt in stmts:
                            c = conn.cursor()
                            if stmt.many:
                                c.executemany(_pg_sql(stmt.sql), stmt.params)
                            else:
                                c.execute(_pg_sql(stmt.sql), stmt.params)
                            cursors.append(c)
                        if last is not None:
                            conn.cursor().execute(last)
                    return cursors

                def execute(stmts: Sequence[Stmt]) -> list[Result]:
                    if not any(stmt.wait for stmt in stmts):
                        pending.extend(stmts)
                        return [Result() for _ in stmts]
                    batch = [*pending, *stmts]
                    pending.clear()
                    cursors = send(batch)[len(batch) - len(stmts):]
                    return [Result(c.fetchall() if c.description else [], c.rowcount)
                            for c in cursors]

                pending: list[Stmt] = []
                try:
                    result = drive(op, execute, first)
                    if write:
                        send(pending, "COMMIT")
                    elif pending:
                        send(pending)
                except BaseException:
                    # Leave the connection idle whatever failed (a guard, a statement, the
                    # operation's own check).
                    if conn.info.transaction_status != _IDLE:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("ROLLBACK")
                    raise
                return result
        except psycopg.Error as exc:
            raise _pg_failure(exc, self.url, first) from exc

    async def arun(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        return await asyncio.to_thread(self.run, op, write=write, durable=durable)

    def close(self) -> None:
        self.session.close()
        self.lazy.close()
        self.pool.close()


class AsyncPostgresDriver:
    dialect = "postgres"
    optimistic = True

    def __init__(self, pool: AsyncConnectionPool[Any], url: str,
                 lazy: AsyncConnectionPool[Any], session: PgSession) -> None:
        self.url = url
        self.pool = pool
        self.lazy = lazy
        self.session = session
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, conninfo: str, url: str, *, pool_size: int = 10,
                      connect_timeout: int = 5,
                      password: Password | None = None) -> AsyncPostgresDriver:
        await asyncio.to_thread(_pg_check, conninfo, url, connect_timeout, password)
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=False, name="steward-async",
            kwargs=apool_kwargs(password, autocommit=True, connect_timeout=connect_timeout),
        )
        lazy: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=max(2, pool_size // 2), open=False,
            name="steward-async-lazy",
            kwargs=apool_kwargs(password, autocommit=True, connect_timeout=connect_timeout,
                                options=_LAZY_OPTIONS),
        )
        await pool.open(wait=True, timeout=connect_timeout * 2)
        await lazy.open(wait=True, timeout=connect_timeout * 2)
        return cls(pool, url, lazy, PgSession(conninfo, connect_timeout, password))

    async def arun(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        import psycopg

        first: Stmt | Batch | Call | None = None
        try:
            try:
                first = next(op)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(first, Stmt) and first.alone:
                try:
                    async with (self.pool if durable else self.lazy).connection() as conn:
                        cur = await conn.execute(_pg_sql(first.sql), first.params)
                        done = Result(await cur.fetchall() if cur.description else [],
                                      cur.rowcount)
                except BaseException:
                    op.close()
                    raise
                return finish(op, done)
            async with self.pool.connection() as conn:
                queued: list[str] = []
                if write:
                    queued.append("BEGIN")
                    if not durable:
                        queued.append(_ASYNC_COMMIT)

                async def send(stmts: Sequence[Stmt], last: str | None = None) -> list[Any]:
                    cursors = []
                    async with conn.pipeline():
                        for sql in queued:
                            await conn.cursor().execute(sql)
                        queued.clear()
                        for stmt in stmts:
                            c = conn.cursor()
                            if stmt.many:
                                await c.executemany(_pg_sql(stmt.sql), stmt.params)
                            else:
                                await c.execute(_pg_sql(stmt.sql), stmt.params)
                            cursors.append(c)
                        if last is not None:
                            await conn.cursor().execute(last)
                    return cursors

                async def execute(stmts: Sequence[Stmt]) -> list[Result]:
                    if not any(stmt.wait for stmt in stmts):
                        pending.extend(stmts)
                        return [Result() for _ in stmts]
                    batch = [*pending, *stmts]
                    pending.clear()
                    cursors = (await send(batch))[len(batch) - len(stmts):]
                    return [Result(await c.fetchall() if c.description else [], c.rowcount)
                            for c in cursors]

                pending: list[Stmt] = []
                try:
                    result = await adrive(op, execute, first)
                    if write:
                        await send(pending, "COMMIT")
                    elif pending:
                        await send(pending)
                except BaseException:
                    if conn.info.transaction_status != _IDLE:
                        with contextlib.suppress(psycopg.Error):
                            await conn.execute("ROLLBACK")
                    raise
                return result
        except psycopg.Error as exc:
            raise _pg_failure(exc, self.url, first) from exc

    def run(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise ConfigError(
                "a synchronous call reached the async Postgres saver from its own event loop, "
                "where it would deadlock: use the async API (ainvoke, astream, aget_state) "
                "with steward.aopen, or steward.open for synchronous code."
            )
        return asyncio.run_coroutine_threadsafe(self.arun(op, write=write, durable=durable),
                                                self.loop).result()

    def holder(self) -> str:
        return self.session.token()  # a plain connection of its own: no loop involved

    async def aholder(self) -> str:
        return await self.session.atoken()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.aclose(), self.loop).result()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.session.close)
        await self.lazy.close()
        await self.pool.close()


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)
