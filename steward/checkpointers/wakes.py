"""What ``steward worker`` wakes, read and marked on the thread table: runs that died
(``stalled``) and waits whose approval ran out of time (``timed_out_op``, in the expiry's
transaction), across tenants. ``steward.workers.timers`` acts on them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from steward.checkpointers.rows import InfoRow, thread_row
from steward.checkpointers.sql import THREAD_INFO_COLS
from steward.checkpointers.threads import Threads
from steward.storage.codec import dump_json, load_json
from steward.storage.ops import Op, Stmt
from steward.storage.values import limit_of

__all__ = ["Due", "due_op", "timed_out_op"]


class Due(NamedTuple):
    """A thread a worker should wake: ``why`` is ``stalled`` (its run died), ``expired`` or
    ``escalated`` (an approval it waits on ran out of time); ``run_as`` the principal of its
    last run (a dict), None when no principal ran it; ``since`` when its row last changed."""

    thread_id: str
    why: str
    run_as: dict[str, Any] | None
    since: float


def due_op(threads: Threads, limit: int = 100) -> Op[list[Due]]:
    """Threads of any tenant that a worker should wake, oldest change first: a run that
    died (``stalled``), or a wait whose approval's time ran out (``expired`` or
    ``escalated``: ``timed_out_op``). For ``steward worker`` only: it reads across
    tenants, without a principal."""
    cols = f"{THREAD_INFO_COLS}, run_as, wake"
    found = (yield Stmt(
        f"SELECT * FROM (SELECT {cols} FROM steward_threads WHERE status = 'running' "
        f"ORDER BY updated_at LIMIT ?) r UNION SELECT * FROM (SELECT {cols} FROM "
        "steward_threads WHERE wake IS NOT NULL ORDER BY updated_at LIMIT ?) w",
        (limit_of(limit), limit_of(limit)))).rows
    n = len(InfoRow._fields)
    rows = [(InfoRow._make(r[:n]), load_json(r[n]), r[n + 1]) for r in found]
    stalled = yield from threads.stalled_op([info for info, _, _ in rows])
    due = [Due(info.thread_id, "stalled" if info.thread_id in stalled else str(wake),
               run_as, info.updated_at)
           for info, run_as, wake in rows
           if info.thread_id in stalled or (wake and info.status == "interrupted")]
    return sorted(due, key=lambda d: d.since)

def timed_out_op(threads: Threads, tid: str, request_id: str, why: str,
             roles: Sequence[str] = (), successor: str | None = None) -> Op[None]:
    """An approval the thread waits on ran out of time (``why``: ``expired``, or
    ``escalated`` to ``successor``, which ``roles`` may vote on): mark its entry in
    ``waiting_on`` (the approver's reach follows the new roles at once) and the thread as
    one to wake. A thread not waiting on it is left alone."""
    row = thread_row((yield Stmt(threads.sql.lock_thread, (tid,))).one())
    waiting = load_json(row.waiting_on) if row is not None else None
    if not waiting or not any(isinstance(w, dict) and w.get("request") == request_id
                              for w in waiting):
        return
    mark: dict[str, Any] = ({"roles": list(roles), "escalated_to": successor}
                            if successor is not None else {"expired": True})
    changed = [{**w, **mark} if isinstance(w, dict) and w.get("request") == request_id
               else w for w in waiting]
    yield Stmt(f"UPDATE steward_threads SET waiting_on = {threads.sql.json_param}, wake = ?, "
               "updated_at = ?, rev = rev + 1 WHERE thread_id = ?",
               (dump_json(changed), why, time.time(), tid))
    threads.drop_view(tid)
