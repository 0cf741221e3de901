"""Governance: what the guards decided, how approvals ended, what was refused.

- Guarded calls come from the guardrails' ``steward_actions`` (one row per call site, however
  often its node re-ran; ``approved`` once its approval was granted, with ``standing_id`` when
  a standing approval let it pass), counted by decision in SQL;
- approval requests from ``steward_approvals``, counted by status;
- refused votes from the ``approval_invalid`` events, by the rule they broke (events written
  before votes named their rule are matched on their reason: "four eyes", else ``other``);
- other tenants' principals refused, from the tenant's access chain (``access:<tenant>``,
  ``steward.audit.refusals``), on the threads of the scope;
- shadow-policy disagreements: guarded calls whose decision carries shadow decisions with
  another effect (the decisions are read in SQL, compared here).
"""

from __future__ import annotations

from typing import Any

from steward.audit.refusals import access_chain
from steward.report.scorecard import Governance, Refusal, Scope, ShadowDisagreement
from steward.report.sql import ReportSql
from steward.storage.codec import load_json
from steward.storage.ops import Op, Stmt

__all__ = ["governance_op"]


def governance_op(q: ReportSql, scope: Scope) -> Op[Governance]:
    cte, params = q.scope(scope)
    mine = "thread_id IN (SELECT thread_id FROM scope)"
    rule, reason = q.text("payload", "rule"), q.text("payload", "reason")
    refused_on = q.text("a.payload", "thread_id")
    actions, approvals, votes, refusals, shadows = yield (
        Stmt(f"{cte} SELECT effect, count(*), sum(CASE WHEN {q.text('decision', 'standing_id')} "
             f"IS NOT NULL THEN 1 ELSE 0 END) FROM steward_actions WHERE {mine} GROUP BY effect",
             params),
        Stmt(f"{cte} SELECT status, count(*) FROM steward_approvals WHERE {mine} "
             "GROUP BY status", params),
        Stmt(f"{cte} SELECT coalesce({rule}, CASE WHEN {reason} LIKE ? THEN 'four_eyes' "
             f"ELSE 'other' END) AS r, count(*) FROM steward_audit WHERE {mine} "
             "AND kind = 'approval_invalid' GROUP BY 1 ORDER BY 1", [*params, "%four eyes%"]),
        Stmt(f"{cte} SELECT a.principal_id, a.tenant, {refused_on}, "
             f"{q.text('a.payload', 'need')}, a.at FROM steward_audit a WHERE a.thread_id = ? "
             f"AND a.kind = 'access_refused' AND {refused_on} IN (SELECT thread_id FROM scope) "
             "ORDER BY a.seq", [*params, access_chain(scope.tenant)]),
        Stmt(f"{cte} SELECT thread_id, action, decision FROM steward_actions WHERE {mine} AND "
             f"{q.text('decision', 'shadow')} IS NOT NULL ORDER BY thread_id, at", params),
    )
    effects: dict[str, int] = {}
    standing = 0
    for effect, n, used in actions.rows:
        effects[str(effect)] = int(n)
        standing += int(used or 0)
    disagreements = []
    for tid, action, raw in shadows.rows:
        decision: dict[str, Any] = load_json(raw) or {}
        enforced = str(decision.get("effect"))
        others = [d for d in decision.get("shadow") or () if isinstance(d, dict)]
        if any(d.get("effect") != enforced for d in others):
            disagreements.append(ShadowDisagreement(
                tid, str(action), enforced, tuple(str(d.get("effect")) for d in others),
                tuple(str(p) for d in others for p in d.get("policy_ids") or ())))
    return Governance(
        guarded_calls=sum(effects.values()), allowed=effects.get("allow", 0),
        denied=effects.get("deny", 0),
        sent_for_approval=effects.get("approval", 0) + effects.get("approved", 0),
        standing_uses=standing,
        approvals={str(s): int(n) for s, n in sorted(approvals.rows)},
        refused_votes={str(r): int(n) for r, n in votes.rows},
        cross_tenant=tuple(Refusal(who, tenant, str(tid), need, float(at))
                           for who, tenant, tid, need, at in refusals.rows),
        shadow_disagreements=tuple(disagreements))
