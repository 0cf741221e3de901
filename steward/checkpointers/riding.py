"""A run's task writes ride with its next checkpoint: one commit per step, not two.

LangGraph saves each task's writes (``put_writes``) as the task finishes, then the step's
checkpoint (``put``); the stock savers commit each. While a run of this process holds the
thread's lease (``rt.config``), Steward keeps an ordinary task's writes here instead and writes
them in the transaction of the thread's next write -- the step's checkpoint, or the lease's
release when the run ends -- so a step costs one commit. Nothing is lost that a crash would not
lose anyway: the checkpoint that follows the writes holds their effect, and a task whose writes
died with the process runs again from the checkpoint before it, exactly as if the crash had
come before the task finished (its effects are not repeated: the ledger keys them by task).
So that a task finished long before its step ends (a fan-out whose other branch waits on a
model) does not wait for that step, writes older than ``period`` are written by a background
thread (``Settler``). Writes that change the thread row (interrupts, errors, resumes) and
writes a filter screens are never held back, and any read of the thread writes what is held
first, so a reader always sees every write made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from steward.checkpointers.participants import Joined
from steward.checkpointers.rows import ThreadRow
from steward.checkpointers.sql import Sql, rows_json
from steward.storage.ops import Op, Stmt

__all__ = ["Riding", "Settler", "Taken", "WriteRow"]

# (checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)
WriteRow = tuple[str, str, str, int, str, str, bytes, str]
Taken = list[tuple[str, str, list[WriteRow]]]  # (thread, holder, rows) a write took

def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Held:
    holder: str  # the run whose lease the writes belong to
    since: float  # time.monotonic() when the first of them was held
    rows: list[WriteRow]


class Riding:
    """The task writes held for each thread (see the module docstring). ``leases``: the runs
    of this process holding threads (``Threads.leases``): only their writes are held, and only
    for as long as they hold the lease.

    A write that takes held rows records them in its ``taken`` list; if the write fails (or
    is made again the careful way) the saver gives them back (``give_back``), so that no
    failure loses them."""

    def __init__(self, sql: Sql, leases: Mapping[str, str]) -> None:
        self._sql = sql
        self._leases = leases
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def hold(self, tid: str, rows: Sequence[WriteRow]) -> bool:
        """Keep a task's rows for the thread's next write; False (keep nothing) when no run of
        this process holds the thread's lease."""
        holder = self._leases.get(tid)
        if holder is None:
            return False
        with self._lock:
            held = self._held.get(tid)
            if held is None or held.holder != holder:
                self._held[tid] = _Held(holder, time.monotonic(), list(rows))
            else:
                held.rows.extend(rows)
        return True

    def take(self, tid: str, holder: str | None, taken: Taken) -> list[WriteRow]:
        """The thread's held rows, if they belong to ``holder``'s run (others are dropped:
        that run lost or ended its lease, and its writes were fenced), noted in ``taken``."""
        with self._lock:
            held = self._held.pop(tid, None)
        if held is None or holder is None or held.holder != holder:
            return []
        taken.append((tid, holder, held.rows))
        return held.rows

    def give_back(self, taken: Taken) -> None:
        """Rows whose write failed go back, ahead of any held since."""
        with self._lock:
            for tid, holder, rows in reversed(taken):
                held = self._held.get(tid)
                if held is None or held.holder != holder:
                    self._held[tid] = _Held(holder, time.monotonic(), list(rows))
                else:
                    self._held[tid] = _Held(holder, held.since, [*rows, *held.rows])
        taken.clear()

    def drop(self, tid: str) -> None:
        with self._lock:
            self._held.pop(tid, None)

    def waiting(self, tid: str | None = None) -> list[str]:
        """The threads with held rows (``tid``: that one, if it has any)."""
        with self._lock:
            if tid is not None:
                return [tid] if tid in self._held else []
            return list(self._held)

    def due(self, age: float) -> list[str]:
        """The threads whose rows have been held ``age`` seconds or more."""
        cutoff = time.monotonic() - age
        with self._lock:
            return [tid for tid, held in self._held.items() if held.since <= cutoff]

    # -- writing them ---------------------------------------------------------------------------

    def joined(self, tid: str, taken: Taken, holder: str | None = None) -> Joined | None:
        """The held rows as a CTE of a one-statement write or release (PostgreSQL), or None
        if none (``holder``: whose run's rows, by default the run of this process holding the
        thread)."""
        rows = self.take(tid, holder or self._leases.get(tid), taken)
        if not rows:
            return None
        return Joined(self._sql.ride_cte, [tid, rows_json(rows, 6)], _nothing, _nothing)

    def write_op(self, tid: str, taken: Taken, holder: str | None = None) -> Op[None]:
        """Write the held rows in the caller's transaction (the write is fenced by the lease
        of ``holder``, by default the run of this process holding the thread)."""
        rows = self.take(tid, holder or self._leases.get(tid), taken)
        if rows:
            yield Stmt(self._sql.insert_writes, [(tid, *row) for row in rows], many=True,
                       wait=False)

    def settle_op(self, tid: str, locked: Callable[[], Op[ThreadRow | None]],
                  taken: Taken) -> Op[None]:
        """Write the thread's held rows on their own (a read wants them, or they are due),
        under the thread row's lock, if their run still holds the lease."""
        holder = self._leases.get(tid)
        if holder is None:
            self.drop(tid)
            return
        row = yield from locked()
        if row is not None and row.lease_owner == holder:  # else its writes are fenced
            yield from self.write_op(tid, taken, holder)


class Settler:
    """Writes held rows that waited ``period`` seconds (see the module docstring): one daemon
    thread per saver, started with the first held write, waking every ``period``."""

    def __init__(self, riding: Riding, settle: Callable[[str], None], period: float) -> None:
        self.riding = riding
        self.settle = settle
        self.period = period
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="steward-settler",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            for tid in self.riding.due(self.period):
                try:
                    self.settle(tid)
                except Exception:  # kept for the thread's next write
                    continue

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
