"""What the saver's collaborators promise it, as typed protocols handed to its constructor.

- A :class:`WriteParticipant` has rows that belong in the same transaction as a checkpoint
  or a task's writes (the audit log's events): the saver asks it in, so the rows and the
  write commit together, in one round trip where the write is one statement.
- A :class:`WriteFilter` screens a task's writes before they are stored (the guardrails keep
  a refused task's writes and spent resume values out).

The saver knows nothing else of them; nothing is wired in after it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from steward.checkpointers.rows import ThreadRow
from steward.storage.ops import Op

__all__ = ["Joined", "Screen", "WriteFilter", "WriteParticipant"]


@dataclass(frozen=True)
class Joined:
    """A participant's rows inside a one-statement write (PostgreSQL): ``cte`` is a
    ``, name AS (...)`` clause that writes them only where ``(SELECT ok FROM ok) = 1`` (the
    thread row's guard), ``params`` its parameters; ``written`` or ``unwritten`` is called once
    the statement ran or failed."""

    cte: str
    params: Sequence[Any]
    written: Callable[[], None]
    unwritten: Callable[[], None]
    # A unique key the rows break when another writer moved on since they were built: the
    # statement then fails as StaleView and the saver writes again the careful way.
    stale_key: str | None = None
    # Columns of the thread's row the write sets with them (a run's end: the audit head).
    sets: tuple[tuple[str, Any], ...] = ()


class WriteParticipant(Protocol):
    def joins(self, thread_id: str) -> bool:
        """Whether it has rows for the thread's next write."""
        ...

    def joined(self, thread_id: str, checkpoint_id: str | None,
               tenant: str | None) -> Joined | None:
        """Its rows as part of one statement, or None when it needs the careful way."""
        ...

    def write_op(self, thread_id: str, checkpoint_id: str | None, row: ThreadRow) -> Op[None]:
        """Write its rows in the saver's transaction, which holds the thread row's lock."""
        ...

    def run_started_op(self, thread_id: str, row: ThreadRow) -> Op[None]:
        """A run took the thread's lease (the row is locked)."""
        ...

    def run_ended_op(self, thread_id: str) -> Op[None]:
        """A run gave the lease back (the row is locked)."""
        ...

    def ended(self, thread_id: str, tenant: str | None) -> Joined | None:
        """Its rows for a run's end as part of a one-statement release (PostgreSQL), or None
        when it needs the careful way (``run_ended_op``)."""
        ...


@dataclass(frozen=True)
class Screen:
    """What becomes of a task's writes: ``store`` none of them when False; else those
    ``keep(channel, value)`` accepts. ``clear_resume``: delete the thread's pending resume of
    no task. ``done`` is called inside the write's transaction."""

    store: bool
    keep: Callable[[str, Any], bool]
    clear_resume: bool
    done: Callable[[], None]


class WriteFilter(Protocol):
    def screen(self, task_id: str, writes: Sequence[tuple[str, Any]]) -> Screen | None:
        """None: store the writes as they are (and the saver may take its fastest path)."""
        ...
