"""The hash chain: pure functions shared by the database, the exporter and the offline
verifier, so that an auditor checks an export with exactly the code that wrote it.

Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
(sorted keys, no spaces, UTF-8, as orjson writes it: six times cheaper than the standard
library, which matters on every step of every audited run), where the payload stands in by its
own hash (``payload_hash``), so that a payload can be erased (``rt.erase``: replaced by a
tombstone naming the erasure's receipt) and the chain still verifies. Events written before
payloads had their own hash (no ``payload_hash``) are hashed with the payload itself. The
first event of a thread follows ``GENESIS``. An edit changes a hash; a deletion, an insertion
or a swap breaks a ``prev_hash`` link or the sequence; a deleted tail no longer reaches the
head the thread's row recorded at the end of its last run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from steward.errors import AuditTampered

__all__ = ["FIELDS", "GENESIS", "Event", "event_hash", "payload_digest", "tombstone",
           "tombstone_of", "verify_chain"]

GENESIS = "0" * 64
FIELDS = ("thread_id", "seq", "kind", "at", "tenant", "principal_id", "run_id", "node", "step",
          "checkpoint_ns", "checkpoint_id", "duration", "payload")


@dataclass(frozen=True)
class Event:
    thread_id: str
    seq: int
    kind: str
    at: float
    tenant: str | None
    principal_id: str | None
    run_id: str | None
    node: str | None
    step: int | None
    checkpoint_ns: str | None
    checkpoint_id: str | None
    duration: float | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    payload_hash: str | None = None

    def body(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash,
                "payload_hash": self.payload_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        values: dict[str, Any] = {name: data.get(name) for name in (*FIELDS, "prev_hash",
                                                                     "hash", "payload_hash")}
        return cls(**values)

    @property
    def erased(self) -> str | None:
        """The receipt of the erasure that removed this event's payload, if one did."""
        return tombstone_of(self.payload) if self.payload_hash else None


def tombstone(receipt_id: str) -> dict[str, Any]:
    """What an erased payload is replaced by."""
    return {"erased": receipt_id}


def tombstone_of(payload: Mapping[str, Any]) -> str | None:
    erased = payload.get("erased") if len(payload) == 1 else None
    return erased if isinstance(erased, str) and erased.startswith("era_") else None


def _canonical(body: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        # What orjson cannot write (integers beyond 64 bits, keys that are not strings, in
        # an edited export) is written by the standard library: the same input always takes
        # the same path, so the hash stays a function of the content.
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode()


def payload_digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(payload)).hexdigest()


def event_hash(prev_hash: str, body: Mapping[str, Any], payload_hash: str | None = None) -> str:
    """The chain hash of an event ``body`` (FIELDS) after ``prev_hash``; with
    ``payload_hash`` the payload is hashed as that digest, not as itself."""
    if payload_hash is not None:
        body = {**body, "payload": payload_hash}
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(body)).hexdigest()


def _at(thread_id: str, event: Event, message: str) -> AuditTampered:
    return AuditTampered(message, thread_id=thread_id, seq=event.seq)


def verify_chain(thread_id: str, events: Iterable[Event],
                 head: tuple[int, str | None] | None = None) -> int:
    """Check one thread's events, in stored order; returns how many. Raises AuditTampered
    naming the first event that does not fit. ``head``: the (seq, hash) the thread's row
    recorded when its last run ended; the chain must reach it (a run that was killed may have
    written events after it)."""
    prev, expected, count = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    for event in events:
        where = f"the audit chain of thread {thread_id!r} breaks at event {event.seq}"
        what = f"{where} ({event.kind})"
        if event.thread_id != thread_id:
            raise _at(thread_id, event, f"{where}: it belongs to thread {event.thread_id!r}.")
        if event.seq != expected:
            raise _at(thread_id, event, f"{what}: expected event {expected} there — an event "
                      "was deleted, inserted or moved. Restore from a backup.")
        if event.prev_hash != prev:
            raise _at(thread_id, event, f"{what}: it does not follow the event before it — "
                      "events were deleted, inserted or reordered. Restore from a backup.")
        if event_hash(prev, event.body(), event.payload_hash) != event.hash:
            raise _at(thread_id, event, f"{what}: its content does not match its hash — the "
                      "event was edited. Restore from a backup.")
        if event.payload_hash is not None and event.erased is None \
                and payload_digest(event.payload) != event.payload_hash:
            raise _at(thread_id, event, f"{what}: its payload does not match its hash — the "
                      "payload was edited. Restore from a backup.")
        prev, expected, count = event.hash, expected + 1, count + 1
        hashes[event.seq] = event.hash
    if head is not None and head[0]:
        seq, last = head
        if seq > count or hashes.get(seq) != last:
            raise AuditTampered(
                f"the audit chain of thread {thread_id!r} holds {count} events, but its last "
                f"completed run ended at event {seq} with another hash: events were deleted "
                "from the end or rewritten. Restore from a backup.", thread_id=thread_id)
    return count
