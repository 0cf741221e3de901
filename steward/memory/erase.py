"""``rt.erase(subject, by=principal)``: the right to be forgotten, with the audit trail intact.

What goes, in one transaction:

- the subject's memories (their user space, and items written with ``subject=`` them);
- the working context of the threads they own: checkpoints, pending writes, effect results,
  approval request arguments and vote comments (the thread row stays, marked ``erased``);
- the comments of votes they cast on others' threads;
- the payloads of audit events in their threads or acted by them: each is replaced by a
  tombstone naming this erasure's receipt. Events keep their payload's hash, so every chain
  still verifies (events written before payloads had their own hash are kept and counted).

What stays: who did what when (event kinds, times, principal ids, the chain), so that the
record of decisions survives; and a receipt, stored and returned, itself an audit event of the
tenant's memory chain (``memory:<tenant>``). The principal erasing needs admin access to each
of the subject's threads; a thread being run right now makes the erasure wait (ThreadBusy).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from steward.audit.chain import tombstone
from steward.checkpointers._ops import Op, Stmt
from steward.identity import Access, Principal

if TYPE_CHECKING:
    from steward.runtime import Runtime

__all__ = ["ErasureReceipt", "erase_op"]


@dataclass(frozen=True)
class ErasureReceipt:
    receipt_id: str
    tenant: str
    subject: str
    erased_by: str
    at: float
    memories: int
    threads: tuple[str, ...]
    checkpoints: int
    audit_events: int
    audit_kept: int  # events written before payloads had their own hash: not erasable
    digest: str  # SHA-256 of the receipt's other fields, as stored

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["threads"] = list(self.threads)
        return out


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def erase_op(rt: Runtime, subject: str, by: Principal) -> Op[ErasureReceipt]:
    saver, tenant = rt.checkpointer, by.tenant
    receipt_id = f"era_{uuid.uuid4().hex[:24]}"
    now = time.time()
    threads = [r[0] for r in (yield Stmt(
        "SELECT thread_id FROM steward_threads WHERE tenant = ? AND owner = ? "
        "ORDER BY thread_id", (tenant, subject))).rows]
    for tid in threads:  # every check before any change: a refusal changes nothing
        yield from saver._authorize(tid, by, Access.ADMIN)
    owned = "SELECT thread_id FROM steward_threads WHERE tenant = ? AND owner = ?"
    memories = (yield Stmt("DELETE FROM steward_memory WHERE tenant = ? AND (subject = ? OR "
                           "scope = ?)", (tenant, subject, f"user:{subject}"))).rowcount
    checkpoints = (yield Stmt(f"DELETE FROM steward_checkpoints WHERE thread_id IN ({owned})",
                              (tenant, subject))).rowcount
    j = saver.sql.json_param
    gone = json.dumps(tombstone(receipt_id))
    for sql in (f"DELETE FROM steward_blobs WHERE thread_id IN ({owned})",
                f"DELETE FROM steward_writes WHERE thread_id IN ({owned})",
                f"UPDATE steward_effects SET result = NULL, type = NULL, error = NULL "
                f"WHERE thread_id IN ({owned})",
                f"UPDATE steward_votes SET comment = NULL WHERE thread_id IN ({owned})"):
        yield Stmt(sql, (tenant, subject), wait=False)
    yield Stmt(f"UPDATE steward_approvals SET request = {j} WHERE thread_id IN ({owned})",
               (gone, tenant, subject), wait=False)
    yield Stmt("UPDATE steward_votes SET comment = NULL WHERE voter = ? AND thread_id IN "
               "(SELECT thread_id FROM steward_threads WHERE tenant = ?)", (subject, tenant),
               wait=False)
    yield Stmt("UPDATE steward_threads SET status = 'erased', waiting_on = NULL, "
               f"waiting_at = NULL, rev = rev + 1, updated_at = ? WHERE thread_id IN ({owned})",
               (now, tenant, subject), wait=False)
    touched = (f"(thread_id IN ({owned}) OR (principal_id = ? AND tenant = ?)) "
               "AND kind <> 'erasure'")
    kept = (yield Stmt(f"SELECT count(*) FROM steward_audit WHERE payload_hash IS NULL AND "
                       f"{touched}", (tenant, subject, subject, tenant))).rows[0][0]
    events = (yield Stmt(f"UPDATE steward_audit SET payload = {j} WHERE payload_hash IS NOT "
                         f"NULL AND {touched}", (gone, tenant, subject, subject,
                                                 tenant))).rowcount
    fields: dict[str, Any] = {
        "receipt_id": receipt_id, "tenant": tenant, "subject": subject, "erased_by": by.id,
        "at": now, "memories": max(memories, 0), "threads": threads,
        "checkpoints": max(checkpoints, 0), "audit_events": max(events, 0),
        "audit_kept": int(kept)}
    receipt = ErasureReceipt(**{**fields, "threads": tuple(threads)}, digest=_digest(fields))
    yield Stmt(f"INSERT INTO steward_erasures (receipt_id, tenant, subject, erased_by, at, "
               f"receipt) VALUES (?, ?, ?, ?, ?, {j})",
               (receipt_id, tenant, subject, by.id, now, json.dumps(receipt.to_dict())),
               wait=False)
    chain = f"memory:{tenant}"
    rt.audit.record(chain, "erasure", receipt.to_dict(), principal=by, redact=False)
    yield from rt.audit.locked_flush_op(chain)
    return receipt
