"""Audit completeness: every effect has its guard decision (and, where the guard asked for one,
its approval), every chain verifies, and no event holds personal data.

- Effects (``effect_call``, and ``effect_retry``: a call made again after a crash mid-call) are
  matched in SQL with the latest ``guard`` event before them in the same task (the same
  ``checkpoint_ns``: a node's guarded call and its effect share it, also when the node re-ran
  after an approval or a crash), and, when that guard asked for an approval, with an
  ``approval_outcome`` that approved (or an ``approval_standing_use``) in the task before them;
- chains are read whole (``AuditLog.chains_op``: 50 at a time, in one round trip) and
  verified as ``rt.audit.verify`` does; the
  tenant's own chains (memory, and the access refusals: they belong to no thread) are verified
  too when the scope has threads and names no workflow or thread;
- each stored payload of a thread is checked with the runtime's redactor
  (``AuditLog.personal_data``): a payload it would still change was written unredacted.

Each finding names the thread and the event's seq, never the personal data found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from steward.audit.chain import Event, verify_chain
from steward.audit.log import AuditLog
from steward.errors import AuditTampered
from steward.report.scorecard import AuditCompleteness, Finding, Scope
from steward.report.sql import ReportSql
from steward.storage.ops import Op, Stmt

__all__ = ["Chains", "EffectRow", "completeness", "effects_op"]


@dataclass(frozen=True)
class EffectRow:
    thread_id: str
    seq: int
    name: str | None
    guard_seq: int | None
    action: str | None
    decided: str | None
    approved: bool


def effects_op(q: ReportSql, scope: Scope) -> Op[list[EffectRow]]:
    cte, params = q.scope(scope)
    task = "coalesce({}.checkpoint_ns, '') = coalesce({}.checkpoint_ns, '')"
    sql = f"""{cte},
eff AS (SELECT e.thread_id, e.seq, e.checkpoint_ns, {q.text('e.payload', 'effect')} AS name,
               (SELECT max(g.seq) FROM steward_audit g WHERE g.thread_id = e.thread_id
                AND g.kind = 'guard' AND g.seq < e.seq AND {task.format('g', 'e')}) AS guard_seq
        FROM steward_audit e WHERE e.thread_id IN (SELECT thread_id FROM scope)
        AND e.kind IN ('effect_call', 'effect_retry'))
SELECT f.thread_id, f.seq, f.name, f.guard_seq, {q.text('g.payload', 'action')},
       {q.text('g.payload', 'decision', 'effect')},
       CASE WHEN EXISTS (SELECT 1 FROM steward_audit o WHERE o.thread_id = f.thread_id
            AND o.seq < f.seq AND {task.format('o', 'f')}
            AND ((o.kind = 'approval_outcome' AND {q.text('o.payload', 'decision')} = 'approve')
                 OR o.kind = 'approval_standing_use')) THEN 1 ELSE 0 END
FROM eff f LEFT JOIN steward_audit g ON g.thread_id = f.thread_id AND g.seq = f.guard_seq
ORDER BY f.thread_id, f.seq"""
    rows = (yield Stmt(sql, params)).rows
    return [EffectRow(tid, int(seq), name, int(g) if g is not None else None, action, decided,
                      bool(approved)) for tid, seq, name, g, action, decided, approved in rows]


@dataclass
class Chains:
    """What the chains of the scope showed, gathered thread by thread."""

    chains: int = 0
    verified: int = 0
    events: int = 0
    personal: int = 0
    findings: list[Finding] = field(default_factory=list)

    def check(self, audit: AuditLog, chain: str, events: Sequence[Event],
              head: tuple[int, str | None] | None, error: AuditTampered | None = None, *,
              scan: bool = True) -> None:
        """Verify one chain (``error``: reading it already failed) and, with ``scan``, look
        for personal data in its payloads."""
        self.chains += 1
        self.events += len(events)
        try:
            if error is not None:
                raise error
            verify_chain(chain, events, head)
            self.verified += 1
        except AuditTampered as exc:
            self.findings.append(Finding("chain", chain, exc.seq, str(exc)))
        if not scan:
            return
        for event in events:
            if event.erased:
                continue
            found = audit.personal_data(event.payload)
            if found:
                self.personal += 1
                where = "; ".join(f"{path or 'payload'}: {', '.join(names)}"
                                  for path, names in found)
                self.findings.append(Finding(
                    "personal_data", chain, event.seq,
                    f"{event.kind} holds what the redactor masks ({where})"))


def completeness(effects: Iterable[EffectRow], chains: Chains) -> AuditCompleteness:
    findings: list[Finding] = []
    rows = list(effects)
    guarded = needing = approved = 0
    for e in rows:
        name = e.name or "an effect"
        if e.guard_seq is None:
            findings.append(Finding("unguarded_effect", e.thread_id, e.seq,
                                    f"effect {name} ran with no guard decision before it in "
                                    "its task"))
            continue
        guarded += 1
        if e.decided == "deny":
            findings.append(Finding("effect_after_denial", e.thread_id, e.seq,
                                    f"effect {name} ran after the guard denied {e.action} "
                                    f"(event {e.guard_seq})"))
        elif e.decided == "approval":
            needing += 1
            if e.approved:
                approved += 1
            else:
                findings.append(Finding("unapproved_effect", e.thread_id, e.seq,
                                        f"effect {name} ran without the approval the guard of "
                                        f"{e.action} asked for (event {e.guard_seq})"))
    findings += chains.findings
    findings.sort(key=lambda f: (f.thread_id, f.seq or 0, f.check))
    return AuditCompleteness(
        chains=chains.chains, chains_verified=chains.verified, events=chains.events,
        effects=len(rows), effects_guarded=guarded, effects_needing_approval=needing,
        effects_approved=approved, events_with_personal_data=chains.personal,
        findings=tuple(findings))
