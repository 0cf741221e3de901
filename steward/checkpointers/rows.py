"""The thread table's rows as the saver reads them, and what a write learns about them.

Shared by the thread table (``threads``), the saver and the parts that join its writes, so
that none of them needs the others to name a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from steward.checkpointers.deltas import Key, Known
from steward.storage.codec import load_json

__all__ = ["InfoRow", "ThreadRow", "WriteCtx", "thread_row", "voters"]


@dataclass(slots=True)
class WriteCtx:
    """What a write learns, applied to this process's caches once it has committed.

    ``optimistic``: trust the thread rows this process saw last (see ``Threads.claim_op``)."""

    optimistic: bool
    views: dict[str, ThreadRow] = field(default_factory=dict)
    lists: dict[Key, Known | None] = field(default_factory=dict)
    # Held task writes the write took (riding.Taken), given back if it fails.
    taken: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    # Data keys the write made ((scope, wrapped key): ``Envelope.confirm``), trusted once
    # it has committed.
    keys: list[tuple[tuple[str, ...], bytes]] = field(default_factory=list)


class ThreadRow(NamedTuple):
    """A thread's row as the saver reads it (``THREAD_COLS``)."""

    tenant: str | None
    owner: str | None
    lease_owner: str | None
    lease_expires_at: float | None
    expires_at: float | None
    status: str
    waiting_on: Any  # JSON text (SQLite) or a decoded list (PostgreSQL), or None
    waiting_at: str | None
    rev: int
    created_at: float  # also the row's incarnation: a deleted and re-created thread differs
    audit_seq: int  # the head of the thread's audit chain when its last run ended
    audit_head: str | None
    resumed_by: str | None  # who resumed it last by a vote alone (the approver's reach)
    lease_holder: str | None  # the lease holder's process (storage.liveness)


class InfoRow(NamedTuple):
    """A thread's row as ``thread_info`` and ``list_threads`` read it (``THREAD_INFO_COLS``)."""

    thread_id: str
    tenant: str | None
    owner: str | None
    status: str
    waiting_on: Any
    created_at: float
    updated_at: float
    expires_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    lease_holder: str | None


def thread_row(row: Sequence[Any] | None) -> ThreadRow | None:
    return ThreadRow._make(row) if row is not None else None


def voters(waiting_on: Any) -> frozenset[str]:
    """The roles that may vote on the approvals a thread waits on (``waiting_on``, as the
    saver summarizes interrupts: ``configs.interrupts``)."""
    waiting = load_json(waiting_on) or []
    return frozenset(str(role) for w in waiting if isinstance(w, dict)
                     for role in (w.get("roles") or ()))
