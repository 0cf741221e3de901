"""Growing lists stored as deltas: the new items plus a reference, not the whole list again.

A message history (``add_messages``) or any list a reducer appends to gains a few items per
step, yet LangGraph hands the saver the whole list every time, and the stock savers store it
whole: storage grows with the square of the history. Steward stores a list that extends one it
stored or read before as ``(base version, how many of its items to keep, the new items)``;
reading follows the chain back to a full value and replays it, so the list comes back exactly
(order, ids, and removals: a removed or replaced item ends the kept prefix there). Every
``MAX_DEPTH`` deltas a full value is stored again, which bounds the chain a read walks.

Why in the saver rather than LangGraph's ``DeltaChannel`` (beta): that channel must be chosen
in each graph's state schema and changes its reducer's contract, while Steward's users keep
plain ``add_messages``/``operator.add`` graphs; the saver sees every list and needs no reducer.
What it assumes, as ``DeltaChannel`` does by replaying writes: an item, once stored, is not
changed in place later (LangGraph's reducers return new lists of the same item objects; to
change a message, return one with the same id and ``add_messages`` replaces it). The prefix is
recognised by object identity against the list this process last stored or read, so checking
costs a pointer comparison per item, not a serialization.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64  # deltas between two full values
_ENTRIES = 4_096  # lists remembered per saver (a list's items are shared with the graph)

Key = tuple[str, str, str]  # (thread_id, checkpoint_ns, channel)


@dataclass(frozen=True, slots=True)
class Known:
    """A list as stored (or read) at ``version``, in one incarnation of its thread."""

    version: str
    items: tuple[Any, ...]
    depth: int
    incarnation: float  # the thread row's created_at: a recreated thread is another thread


@dataclass(frozen=True, slots=True)
class Delta:
    base: str
    keep: int
    items: list[Any]
    depth: int


def plan(value: Any, known: Known | None) -> Delta | None:
    """How to store ``value`` as a delta of ``known``, or None to store it whole."""
    if known is None or type(value) is not list or known.depth >= MAX_DEPTH:
        return None
    base = known.items
    limit = min(len(value), len(base))
    keep = 0
    while keep < limit and value[keep] is base[keep]:
        keep += 1
    if keep * 2 < len(value):  # mostly new: a full value is as small and ends the chain
        return None
    return Delta(known.version, keep, value[keep:], known.depth + 1)


def rebuild(chain: Sequence[tuple[list[Any], int | None]]) -> list[Any]:
    """The list at the end of ``chain``: a full value, then ``(items, keep)`` deltas."""
    items, _ = chain[0]
    out = list(items)
    for delta, keep in chain[1:]:
        assert keep is not None
        out = out[:keep] + list(delta)
    return out


class ListCache:
    """The lists this process last stored or read, per thread, namespace and channel."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Key, Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key, incarnation: float) -> Known | None:
        with self._lock:
            known = self._entries.get(key)
        return known if known is not None and known.incarnation == incarnation else None

    def update(self, entries: dict[Key, Known | None]) -> None:
        with self._lock:
            for key, known in entries.items():
                if known is None:
                    self._entries.pop(key, None)
                    continue
                self._entries[key] = known
                self._entries.move_to_end(key)
            while len(self._entries) > _ENTRIES:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
