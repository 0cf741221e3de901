"""The seam between the parts' logic and database I/O: operations as generators.

Every operation (the saver's and every other part's) is written once, as a generator that
yields :class:`Stmt` objects and receives :class:`Result` objects back, without touching a
connection. A driver runs the generator inside one transaction: synchronously (sqlite3,
psycopg) or asynchronously (psycopg's async connections). So SQL, serialization and the
access rule live once, and every sync method and its async twin are the same code.

An operation may also yield a :class:`Call`: I/O that is not the database's (a key service
unwrapping a data key), which the driver runs inside the same transaction and hands back the
result of -- an async driver in a worker thread, so that its event loop never waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stmt:
    """One SQL statement with ``?`` placeholders; ``many`` runs it once per params row.

    ``wait=False`` says the operation needs neither rows nor a row count back, so a driver
    may send it without waiting for the server (Postgres pipeline mode) and hand back an
    empty Result; errors then surface at the next statement that waits, or at commit.
    """

    sql: str
    params: Sequence[Any] = ()
    many: bool = False
    wait: bool = True
    # The operation's one and only statement, atomic by itself: a driver may run it without
    # a transaction around it (Postgres: no BEGIN, no COMMIT, one round trip); its Result
    # (rows, with RETURNING) is the operation's last.
    alone: bool = False
    # Unique keys whose violation by this statement means what it was built from is stale
    # (another writer moved on): the driver raises StaleView instead of StorageError.
    stale_keys: frozenset[str] = frozenset()


class StaleView(Exception):
    """A guard statement found that a thread row changed since this process last saw it."""


@dataclass(slots=True)
class Result:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = 0

    def one(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


@dataclass(frozen=True, slots=True)
class Call:
    """A call outside the database that an operation needs the result of (``fn()``); an
    exception it raises ends the operation (the driver closes it and rolls its transaction
    back) and reaches the driver's caller."""

    fn: Callable[[], Any]


Batch = tuple[Stmt, ...]
# An operation yields a Stmt and receives its Result, or yields a Batch of independent
# statements and receives their Results as a list: a driver may send a batch in one round trip.
# It may also yield a Call and receive what the call returned.
Op = Generator[Stmt | Batch | Call, Any, T]
Execute = Callable[[Sequence[Stmt]], list[Result]]


def finish(op: Op[T], result: Any) -> T:
    """Hand an operation its last statement's result and return what it returns."""
    try:
        op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("an operation went on after its 'alone' statement")


def drive(op: Op[T], execute: Execute, first: Stmt | Batch | Call | None = None) -> T:
    """Run an operation to completion with a synchronous executor (``first``: its first
    statement, when the driver has already taken it out)."""
    try:
        msg = next(op) if first is None else first
        while True:
            if isinstance(msg, Stmt):
                msg = op.send(execute((msg,))[0])
            elif isinstance(msg, Call):
                msg = op.send(msg.fn())
            else:
                msg = op.send(execute(msg))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        op.close()  # the operation puts back what it took (e.g. audit events) at once
        raise


async def adrive(op: Op[T], execute: Callable[[Sequence[Stmt]], Awaitable[list[Result]]],
                 first: Stmt | Batch | Call | None = None) -> T:
    """Run an operation to completion with an asynchronous executor (a Call in a worker
    thread)."""
    try:
        msg = next(op) if first is None else first
        while True:
            if isinstance(msg, Stmt):
                msg = op.send((await execute((msg,)))[0])
            elif isinstance(msg, Call):
                msg = op.send(await asyncio.to_thread(msg.fn))
            else:
                msg = op.send(await execute(msg))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        op.close()
        raise
