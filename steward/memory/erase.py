"""``rt.erase(subject, by=principal)``: the right to be forgotten, with the audit trail intact.

Who may: a principal holding a role that ``thread_roles`` grants ``admin`` (a tenant-level
right; the CLI's ``--thread-roles ROLE=admin``), checked before anything changes. A refused
erasure changes nothing but the tenant's memory chain, where the refusal is audited.

What goes, in one transaction:

- the subject's memories (their user space, and items written with ``subject=`` them);
- the working context of the threads they own *and of the threads about them* (whose
  subjects name them: ``rt.config(subjects=...)``, ``steward.add_subjects``): checkpoints,
  pending writes, effect results, approval request arguments and vote comments (the thread
  row stays, marked ``erased``, and no longer names them as a subject);
- the comments of votes they cast on others' threads;
- with per-thread data keys (``KmsKeys``), the data keys of those threads and of the
  subject's memories, so that any copy of what they sealed can no longer be read
  (crypto-shredding; see the README for what that covers);
- the payloads of audit events in those threads or acted by them: each is replaced by a
  tombstone naming this erasure's receipt. Events keep their payload's hash, so every chain
  still verifies (events written before payloads had their own hash are kept and counted).

What stays: who did what when (event kinds, times, principal ids, the chain), so that the
record of decisions survives; and a receipt, stored and returned, itself an audit event of the
tenant's memory chain (``memory:<tenant>``). A thread being run right now makes the erasure
wait (ThreadBusy). Erasing again when nothing new is left (or a subject Steward never held)
changes nothing and mints no receipt: the result says ``already_erased`` (with the earlier
receipt) or ``nothing_to_erase``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from steward.audit.chain import tombstone
from steward.checkpointers.housekeeping import erase_context_op
from steward.errors import StewardError, ThreadAccessDenied
from steward.identity import Access, Principal
from steward.nodes.effects import erase_results_op
from steward.storage.ops import Op, Stmt

if TYPE_CHECKING:
    from steward.context import NodeServices

__all__ = ["ErasureReceipt", "erase_op"]


Outcome = Literal["erased", "already_erased", "nothing_to_erase"]


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure did. ``outcome``: ``erased`` (this call erased and stored this
    receipt), ``already_erased`` (nothing left; the subject's latest earlier receipt) or
    ``nothing_to_erase`` (Steward held nothing of the subject; no receipt was stored)."""

    receipt_id: str | None
    tenant: str
    subject: str
    erased_by: str | None
    at: float | None
    memories: int
    threads: tuple[str, ...]
    checkpoints: int
    audit_events: int
    audit_kept: int  # events written before payloads had their own hash: not erasable
    digest: str | None  # SHA-256 of the receipt's other fields, as stored
    outcome: Outcome = "erased"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["threads"] = list(self.threads)
        return out


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def erase_op(rt: NodeServices, subject: str, by: Principal) -> Op[ErasureReceipt | StewardError]:
    """The erasure in one transaction. A refusal is returned, not raised, so that its audit
    event commits; the caller raises it."""
    saver, tenant = rt.checkpointer, by.tenant
    chain = f"memory:{tenant}"
    if saver.threads.access.level(by) != Access.ADMIN:
        rt.audit.record(chain, "erasure_refused", {"subject": subject, "reason": "no admin role"},
                        principal=by)
        yield from rt.audit.locked_flush_op(chain)
        refused = (f"principal {by.id!r} may not erase a person in tenant {tenant!r}: erasure "
                   f"needs a role granted admin access, and none of its roles "
                   f"{sorted(by.roles)} is. ")
        return ThreadAccessDenied(
            refused + "Grant one with steward.open(..., thread_roles={'<role>': 'admin'}) and "
            "act as a principal holding it.",
            cli=refused + "Act as a principal holding such a role (--as TENANT/ID:ROLE), "
            "granted with --thread-roles ROLE=admin (the flag replaces the default grants; "
            "or set $STEWARD_THREAD_ROLES).")
    receipt_id = f"era_{uuid.uuid4().hex[:24]}"
    now = time.time()
    threads = yield from saver.threads.about_op(tenant, subject)
    for tid in threads:  # every check before any change: a busy thread changes nothing
        yield from saver.threads.authorize_op(tid, by, Access.ADMIN)
    memories = (yield Stmt("DELETE FROM steward_memory WHERE tenant = ? AND (subject = ? OR "
                           "scope = ?)", (tenant, subject, f"user:{subject}"))).rowcount
    # With per-person data keys, the key of their memories goes too (crypto-shredding): also
    # when none is left to delete, since copies of those that expired may still exist.
    shredded = yield from saver.codec.forget_subject(tenant, subject)
    # Each part erases what it keeps of those threads and of the person.
    checkpoints = yield from erase_context_op(saver, threads)
    yield from erase_results_op(threads)
    comments = yield from rt.guardrails.records.erase_op(
        threads, tenant, subject, json.dumps(tombstone(receipt_id)))
    yield from saver.threads.erased_op(threads, tenant, subject)
    events, kept = yield from rt.audit.erasures.erase_op(threads, subject, tenant, receipt_id)
    if not (threads or memories > 0 or events > 0 or comments > 0 or shredded):
        return (yield from _earlier_receipt(rt, tenant, subject))
    fields: dict[str, Any] = {
        "receipt_id": receipt_id, "tenant": tenant, "subject": subject, "erased_by": by.id,
        "at": now, "memories": max(memories, 0), "threads": threads,
        "checkpoints": checkpoints, "audit_events": events, "audit_kept": kept}
    receipt = ErasureReceipt(**{**fields, "threads": tuple(threads)}, digest=_digest(fields))
    yield from rt.audit.erasures.receipt_op(receipt.to_dict())
    rt.audit.record(chain, "erasure", receipt.to_dict(), principal=by, redact=False)
    yield from rt.audit.locked_flush_op(chain)
    return receipt


def _earlier_receipt(rt: NodeServices, tenant: str, subject: str) -> Op[ErasureReceipt]:
    """Nothing was left to erase: the subject's latest receipt, or an empty result."""
    stored = yield from rt.audit.erasures.last_receipt_op(tenant, subject)
    if stored is None:
        return ErasureReceipt(None, tenant, subject, None, None, 0, (), 0, 0, 0, None,
                              "nothing_to_erase")
    stored.pop("outcome", None)
    return ErasureReceipt(**{**stored, "threads": tuple(stored["threads"])},
                          outcome="already_erased")
