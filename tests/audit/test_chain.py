"""The audit chain (steward.audit.chain): with payload hashes, a chain survives erasure
(tombstones) and catches any other payload edit, as a property. No database (the audit log end
to end: test_audit.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from steward import AuditTampered
from steward.audit.chain import (
    GENESIS,
    Event,
    event_hash,
    payload_digest,
    tombstone,
    tombstone_of,
    verify_chain,
)

PROPS = settings(max_examples=200, deadline=None)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)


@PROPS
@given(st.lists(st.dictionaries(st.text(max_size=4), JSONISH, max_size=3), min_size=1,
                max_size=5), st.data())
def test_a_chain_with_payload_hashes_catches_any_payload_edit(payloads: list[dict[str, Any]],
                                                              data: st.DataObject) -> None:
    events, prev = [], GENESIS
    for seq, payload in enumerate(payloads, 1):
        body = {"thread_id": "T", "seq": seq, "kind": "k", "at": 1.5, "tenant": "acme",
                "principal_id": "alice", "run_id": None, "node": None, "step": None,
                "checkpoint_ns": None, "checkpoint_id": None, "duration": None,
                "payload": payload}
        ph = payload_digest(payload)
        digest = event_hash(prev, body, ph)
        events.append(Event(**body, prev_hash=prev, hash=digest, payload_hash=ph))
        prev = digest
    assert verify_chain("T", events, (len(events), prev)) == len(events)
    at = data.draw(st.integers(0, len(events) - 1))
    erased = dataclasses.replace(events[at], payload=tombstone("era_0123"))
    assert verify_chain("T", [*events[:at], erased, *events[at + 1:]]) == len(events)
    edited = data.draw(st.dictionaries(st.text(max_size=4), JSONISH, max_size=3))
    assume(payload_digest(edited) != events[at].payload_hash and
           tombstone_free(edited))
    with pytest.raises(AuditTampered):
        verify_chain("T", [*events[:at], dataclasses.replace(events[at], payload=edited),
                           *events[at + 1:]])


def tombstone_free(payload: dict[str, Any]) -> bool:
    return tombstone_of(payload) is None
