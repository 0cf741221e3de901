"""Efficiency and cost: what the work took, and where humans made it wait.

Durations are computed in SQL from the stored times (a vote's ``at`` minus its request's
``created_at``; an effect's ``finished_at`` minus ``started_at``; a tool or model call's
recorded ``duration``), then summarized here (median and p90 are not SQL in both dialects):

- ``approval_wait``: seconds from each approval request to each vote on it, by the role the
  voter voted as; ``open_requests``: requests still waiting, with their age;
- ``tools``/``models``: latency of each tool and model call, and how many failed;
  ``effects``: of each effect, from the effect ledger (``intent`` rows, calls that never
  finished, are counted as errors);
- ``workflows``: per workflow, steps and model calls per thread, time to resolution of the
  finished threads, tokens and cost (from the ``model_call`` events, which carry a cost when
  ``steward.open(..., prices=...)`` names the model's price).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from steward.report.scorecard import (
    UNNAMED,
    Efficiency,
    Latency,
    OpenRequest,
    Scope,
    ThreadSummary,
    WorkflowStats,
)
from steward.report.sql import ReportSql
from steward.report.stats import Dist
from steward.storage.codec import load_json
from steward.storage.ops import Op, Stmt

__all__ = ["efficiency_op", "workflows"]


def _latencies(rows: Sequence[tuple[Any, bool, Any]]) -> tuple[Latency, ...]:
    """(name, failed, seconds) rows as one Latency per name, slowest median first."""
    by: dict[str, list[tuple[bool, Any]]] = defaultdict(list)
    for name, failed, seconds in rows:
        by[str(name or "?")].append((failed, seconds))
    out = [Latency(name, len(calls), sum(1 for f, _ in calls if f),
                   Dist.of(s for _, s in calls)) for name, calls in by.items()]
    return tuple(sorted(out, key=lambda x: (-(x.seconds.median or 0), x.name)))


def _cost(items: Sequence[ThreadSummary]) -> float | None:
    costs = [t.cost for t in items if t.cost is not None]
    return sum(costs) if costs else None


def workflows(threads: Sequence[ThreadSummary]) -> tuple[WorkflowStats, ...]:
    by: dict[str, list[ThreadSummary]] = defaultdict(list)
    for t in threads:
        by[t.workflow or UNNAMED].append(t)
    return tuple(WorkflowStats(
        name, len(items), sum(1 for t in items if t.category == "finished"),
        Dist.of(t.steps for t in items), Dist.of(t.model_calls for t in items),
        Dist.of(t.time_to_resolution for t in items),
        sum(t.input_tokens for t in items), sum(t.output_tokens for t in items), _cost(items),
        sum(t.unpriced_calls for t in items)) for name, items in sorted(by.items()))


def efficiency_op(q: ReportSql, scope: Scope,
                  threads: Sequence[ThreadSummary]) -> Op[Efficiency]:
    cte, params = q.scope(scope)
    mine = "thread_id IN (SELECT thread_id FROM scope)"
    named = f"coalesce({q.text('payload', 'tool')}, {q.text('payload', 'model')})"
    votes, pending, calls, effects = yield (
        Stmt(f"{cte} SELECT v.role, v.at - a.created_at FROM steward_votes v JOIN "
             "steward_approvals a ON a.request_id = v.request_id WHERE a.thread_id IN "
             "(SELECT thread_id FROM scope) ORDER BY v.at", params),
        Stmt(f"{cte} SELECT a.request_id, a.thread_id, a.action, a.required_roles, a.quorum, "
             "a.created_at, a.expires_at, (SELECT count(*) FROM steward_votes v WHERE "
             "v.request_id = a.request_id) FROM steward_approvals a WHERE a.status = 'pending' "
             "AND a.thread_id IN (SELECT thread_id FROM scope) ORDER BY a.created_at", params),
        Stmt(f"{cte} SELECT kind, {named}, duration FROM steward_audit WHERE {mine} AND kind IN "
             "('tool_result', 'tool_error', 'model_call', 'model_error')", params),
        Stmt(f"{cte} SELECT name, status, finished_at - started_at FROM steward_effects "
             f"WHERE {mine}", params),
    )
    waits: dict[str, list[float]] = defaultdict(list)
    for role, waited in votes.rows:
        waits[str(role or "(no role)")].append(float(waited))
    now = time.time()
    requests = tuple(OpenRequest(
        rid, tid, str(action), tuple(str(r) for r in load_json(roles) or ()), int(votes_so_far),
        int(quorum), float(created), max(0.0, now - float(created)),
        float(expires) if expires is not None else None)
        for rid, tid, action, roles, quorum, created, expires, votes_so_far in pending.rows)
    tools = [(name, kind == "tool_error", d) for kind, name, d in calls.rows
             if kind.startswith("tool")]
    models = [(name, kind == "model_error", d) for kind, name, d in calls.rows
              if kind.startswith("model")]
    ledger = [(name, status != "done", d) for name, status, d in effects.rows]
    return Efficiency(
        workflows=workflows(threads),
        time_to_resolution=Dist.of(t.time_to_resolution for t in threads),
        steps=Dist.of(t.steps for t in threads),
        approval_wait={role: Dist.of(w) for role, w in sorted(waits.items())},
        open_requests=requests, tools=_latencies(tools), models=_latencies(models),
        effects=_latencies(ledger), input_tokens=sum(t.input_tokens for t in threads),
        output_tokens=sum(t.output_tokens for t in threads), cost=_cost(threads))
