"""The seam between the parts' logic and database I/O: operations as generators.

Every operation (the saver's and every other part's) is written once, as a generator that
yields :class:`Stmt` objects and receives :class:`Result` objects back, without touching a
connection. A driver runs the generator inside one transaction: synchronously (sqlite3,
psycopg) or asynchronously (psycopg's async connections). So SQL, serialization and the
access rule live once, and every sync method and its async twin are the same code.
"""

from __future__ import annotations

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


Batch = tuple[Stmt, ...]
# An operation yields a Stmt and receives its Result, or yields a Batch of independent
# statements and receives their Results as a list: a driver may send a batch in one round trip.
Op = Generator[Stmt | Batch, Any, T]
Execute = Callable[[Sequence[Stmt]], list[Result]]


def finish(op: Op[T], result: Any) -> T:
    """Hand an operation its last statement's result and return what it returns."""
    try:
        op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("an operation went on after its 'alone' statement")


def drive(op: Op[T], execute: Execute, first: Stmt | Batch | None = None) -> T:
    """Run an operation to completion with a synchronous executor (``first``: its first
    statement, when the driver has already taken it out)."""
    try:
        msg = next(op) if first is None else first
        while True:
            if isinstance(msg, Stmt):
                msg = op.send(execute((msg,))[0])
            else:
                msg = op.send(execute(msg))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        op.close()  # the operation puts back what it took (e.g. audit events) at once
        raise


async def adrive(op: Op[T], execute: Callable[[Sequence[Stmt]], Awaitable[list[Result]]],
                 first: Stmt | Batch | None = None) -> T:
    """Run an operation to completion with an asynchronous executor."""
    try:
        msg = next(op) if first is None else first
        while True:
            if isinstance(msg, Stmt):
                msg = op.send((await execute((msg,)))[0])
            else:
                msg = op.send(await execute(msg))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        op.close()
        raise
