"""The audit trail's part of erasing a person (``steward.memory.erase``): the payloads of the
events about them replaced by tombstones that name the erasure's receipt, and the receipts,
in ``steward_erasures``. A tombstone stands for an erasure that happened: reading a chain
checks each names a stored receipt (``unreceipted_op``), so a payload blanked behind Steward's
back still breaks the chain."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from steward.audit.chain import Event, tombstone
from steward.errors import AuditTampered
from steward.storage.codec import load_json
from steward.storage.drivers import json_param
from steward.storage.ops import Op, Stmt

__all__ = ["Erasures"]


class Erasures:
    """Tombstones and receipts (see the module); the SQL of ``steward_erasures``."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._j = json_param(dialect)

    def erase_op(self, ids: Sequence[str], person: str, tenant: str,
                 receipt_id: str) -> Op[tuple[int, int]]:
        """Replace by a tombstone naming ``receipt_id`` the payloads of the events of threads
        ``ids`` and of those ``person`` acted in the tenant (not erased before); returns how
        many were replaced, and how many were kept because they predate payload hashes."""
        in_threads = f"thread_id IN ({', '.join('?' for _ in ids)}) OR " if ids else ""
        live = ("json_extract(payload, '$.erased') IS NULL" if self.dialect == "sqlite"
                else "payload->>'erased' IS NULL")
        touched = (f"({in_threads}(principal_id = ? AND tenant = ?)) AND kind NOT IN "
                   f"('erasure', 'erasure_refused') AND {live}")
        params = (*ids, person, tenant)
        kept = (yield Stmt(f"SELECT count(*) FROM steward_audit WHERE payload_hash IS NULL "
                           f"AND {touched}", params)).rows[0][0]
        events: int = (yield Stmt(f"UPDATE steward_audit SET payload = {self._j} WHERE "
                                  f"payload_hash IS NOT NULL AND {touched}",
                                  (json.dumps(tombstone(receipt_id)), *params))).rowcount
        return max(events, 0), int(kept)

    def receipt_op(self, receipt: Mapping[str, Any]) -> Op[None]:
        """Store an erasure's receipt (tombstones naming it then verify)."""
        yield Stmt(f"INSERT INTO steward_erasures (receipt_id, tenant, subject, erased_by, at, "
                   f"receipt) VALUES (?, ?, ?, ?, ?, {self._j})",
                   (receipt["receipt_id"], receipt["tenant"], receipt["subject"],
                    receipt["erased_by"], receipt["at"], json.dumps(dict(receipt))), wait=False)

    def last_receipt_op(self, tenant: str, subject: str) -> Op[dict[str, Any] | None]:
        """The latest stored receipt of erasing ``subject`` in the tenant, if any."""
        row = (yield Stmt("SELECT receipt FROM steward_erasures WHERE tenant = ? AND "
                          "subject = ? ORDER BY at DESC LIMIT 1", (tenant, subject))).one()
        return dict(load_json(row[0])) if row else None

    def unreceipted_op(self, events: Sequence[Event]) -> Op[dict[str, AuditTampered]]:
        """Per chain, the first event whose tombstone names an erasure that never happened (a
        tombstone stands for an erasure that happened, with its receipt), as AuditTampered."""
        erased = sorted({e.erased for e in events if e.erased})
        if not erased:
            return {}
        receipts = {r[0] for r in (yield Stmt(
            "SELECT receipt_id FROM steward_erasures WHERE receipt_id IN "
            f"({', '.join('?' for _ in erased)})", erased)).rows}
        out: dict[str, AuditTampered] = {}
        for event in events:
            if event.erased and event.erased not in receipts and event.thread_id not in out:
                out[event.thread_id] = AuditTampered(
                    f"the audit chain of thread {event.thread_id!r} breaks at event {event.seq} "
                    f"({event.kind}): its payload was replaced by a tombstone of erasure "
                    f"{event.erased!r}, which never happened. Restore from a backup.",
                    thread_id=event.thread_id, seq=event.seq)
        return out
