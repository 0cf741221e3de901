"""Each resume value is used once, by whoever sent it: the guardrails' screen of the writes the
saver stores (its ``WriteFilter``).

LangGraph keeps a resume sent to a thread as a write of no task until the next checkpoint, and
a task keeps the values it consumed with its writes; both would be handed to the next run's
``interrupt()`` in place of its own value, as if whoever runs the thread then had sent them.
So a task that stores what it consumed, or that a guardrail stopped (``ApprovalInvalid``,
``PolicyDenied``: it leaves nothing behind, not even its error), uses up the thread's resume:
the saver deletes it, and the value is remembered (by identity) in case its own write, sent
concurrently by LangGraph's background executor, arrives later. Both paths hold the thread
row's lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.serde.types import ERROR, RESUME

from steward.checkpointers.participants import Screen
from steward.checkpointers.writing import NULL_TASK_ID
from steward.errors import ApprovalInvalid, PolicyDenied

__all__ = ["SpentResumes"]

_SPENT = 1024  # resume values remembered as used up; a run needs them for milliseconds
_NOTHING = object()


def _everything(channel: str, value: Any) -> bool:
    return True


class SpentResumes:
    """Remembers the resume values tasks used up, and screens writes accordingly."""

    def __init__(self) -> None:
        self._spent: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def screen(self, task_id: str, writes: Sequence[tuple[str, Any]]) -> Screen | None:
        spent = [item for ch, v in writes if ch == RESUME and task_id != NULL_TASK_ID
                 for item in (v if isinstance(v, list) else [v])]
        sent = task_id == NULL_TASK_ID and any(ch == RESUME for ch, _ in writes)

        def done() -> None:
            self._spend(spent)

        if any(ch == ERROR and isinstance(v, (ApprovalInvalid, PolicyDenied)) for ch, v in writes):
            return Screen(store=False, keep=_everything, clear_resume=True, done=done)
        if not spent and not sent:
            return None
        return Screen(store=True, keep=self._unspent if sent else _everything,
                      clear_resume=bool(spent), done=done)

    def _unspent(self, channel: str, value: Any) -> bool:
        return not (channel == RESUME and self._is_spent(value))

    def _spend(self, values: Sequence[Any]) -> None:
        with self._lock:
            for value in values:
                self._spent[id(value)] = value  # kept alive, so that its id stays its own
                self._spent.move_to_end(id(value))
            while len(self._spent) > _SPENT:
                self._spent.popitem(last=False)

    def _is_spent(self, value: Any) -> bool:
        with self._lock:
            return self._spent.get(id(value), _NOTHING) is value
