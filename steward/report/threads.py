"""Completion: each thread of the scope, how it stands and what it took, in one statement.

A thread's events are counted and summed in SQL (steps are ``node_end`` events, model calls
``model_call`` events with their tokens and cost, approvals ``approval_request`` events), and
the last event that stopped one of its runs (``run_end``, ``run_error``, ``run_paused``) is
joined back for its kind, error and outcome. Its category comes from its row: ``interrupted``
threads wait, ``running`` ones are running or stalled (their run's lease is void: the thread
table's own test, ``Threads.stalled_op``), ``erased`` ones were erased; an idle thread
finished if its last run ended and failed if it raised. A thread still marked as waiting whose
last run raised (an approver rejected: ``PolicyDenied``) failed too; a vote the approval rules
refused (``ApprovalInvalid``) leaves it waiting.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from steward.checkpointers.rows import InfoRow
from steward.checkpointers.sql import THREAD_INFO_COLS
from steward.checkpointers.threads import Threads
from steward.report.scorecard import Completion, Scope, ThreadSummary
from steward.report.sql import ReportSql
from steward.storage.codec import load_json
from steward.storage.ops import Op, Stmt

__all__ = ["completion", "threads_op"]

_INFO = tuple(f"t.{c.strip()}" for c in THREAD_INFO_COLS.split(","))
_STOPS = "('run_end', 'run_error', 'run_paused')"


def _statement(q: ReportSql, scope: Scope) -> tuple[str, list[Any]]:
    cte, params = q.scope(scope)
    model = "a.kind = 'model_call'"
    return (f"""{cte}
SELECT x.*, l.kind, {q.text('l.payload', 'error')}, {q.text('l.payload', 'outcome', 'status')},
       l.at
FROM (SELECT {', '.join(_INFO)}, s.workflow, count(a.seq) AS events,
             sum(CASE WHEN a.kind = 'node_end' THEN 1 ELSE 0 END) AS steps,
             sum(CASE WHEN {model} THEN 1 ELSE 0 END) AS model_calls,
             sum(CASE WHEN {model} THEN {q.num('a.payload', 'input_tokens')} END) AS tokens_in,
             sum(CASE WHEN {model} THEN {q.num('a.payload', 'output_tokens')} END) AS tokens_out,
             sum(CASE WHEN {model} THEN {q.num('a.payload', 'cost')} END) AS cost,
             sum(CASE WHEN {model} AND {q.num('a.payload', 'cost')} IS NULL THEN 1 ELSE 0 END)
                 AS unpriced,
             sum(CASE WHEN a.kind = 'approval_request' THEN 1 ELSE 0 END) AS approvals,
             max(CASE WHEN a.kind IN {_STOPS} THEN a.seq END) AS last_stop
      FROM scope s JOIN steward_threads t ON t.thread_id = s.thread_id
      LEFT JOIN steward_audit a ON a.thread_id = s.thread_id
      GROUP BY t.thread_id, s.workflow) x
LEFT JOIN steward_audit l ON l.thread_id = x.thread_id AND l.seq = x.last_stop
ORDER BY x.created_at, x.thread_id""", params)


def _waits_on(waiting_on: Any) -> str:
    """Whom a waiting thread waits on: the roles its approvals need, else the interrupts'
    types."""
    whom: list[str] = []
    for item in load_json(waiting_on) or []:
        if not isinstance(item, dict):
            continue
        roles = item.get("roles")
        text = ", ".join(sorted(str(r) for r in roles)) if roles else str(item.get("type")
                                                                          or "interrupt")
        if text not in whom:
            whom.append(text)
    return "; ".join(whom) or "interrupt"


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def threads_op(threads: Threads, q: ReportSql, scope: Scope) -> Op[list[ThreadSummary]]:
    """The scope's threads, oldest first."""
    sql, params = _statement(q, scope)
    rows = (yield Stmt(sql, params)).rows
    n = len(_INFO)
    infos = [InfoRow._make(r[:n]) for r in rows]
    stalled = yield from threads.stalled_op(infos)
    out = []
    for info, row in zip(infos, rows, strict=True):
        (workflow, events, steps, calls, tokens_in, tokens_out, cost, unpriced, approvals,
         _last, stop, error, outcome, stop_at) = row[n:]
        resolved = None
        if info.status == "erased":
            category, detail = "erased", None
        elif info.status == "interrupted" and stop == "run_error" \
                and error not in (None, "ApprovalInvalid"):
            # The run that answered its interrupt raised (an approval rejected: PolicyDenied):
            # the interrupt is still on record, but nothing will answer it.
            category, detail = "failed", str(error)
        elif info.status == "interrupted":
            category, detail = "waiting", _waits_on(info.waiting_on)
        elif info.status == "running":
            category, detail = ("stalled" if info.thread_id in stalled else "running"), None
        elif stop == "run_end":
            category, detail, resolved = "finished", str(outcome) if outcome else None, stop_at
        elif stop == "run_error":
            category, detail = "failed", str(error or "error")
        else:
            category, detail = "other", None
        out.append(ThreadSummary(
            info.thread_id, workflow, info.owner, category, detail, float(info.created_at),
            float(info.updated_at), float(resolved) if resolved is not None else None,
            int(events or 0), int(steps or 0), int(calls or 0), int(_number(tokens_in)),
            int(_number(tokens_out)), float(cost) if cost is not None else None,
            int(unpriced or 0), int(approvals or 0)))
    return out


def completion(threads: list[ThreadSummary]) -> Completion:
    """The completion section from the threads' summaries."""
    by = Counter(t.category for t in threads)
    finished = [t for t in threads if t.category == "finished"]
    return Completion(
        threads=len(threads), finished=by["finished"],
        finished_unassisted=sum(1 for t in finished if not t.approvals),
        finished_after_approval=sum(1 for t in finished if t.approvals),
        outcomes=dict(Counter(t.detail or "-" for t in finished).most_common()),
        waiting=by["waiting"],
        waiting_on=dict(Counter(t.detail or "-" for t in threads
                                if t.category == "waiting").most_common()),
        failed=by["failed"],
        failed_by=dict(Counter(t.detail or "-" for t in threads
                               if t.category == "failed").most_common()),
        stalled=by["stalled"], running=by["running"], erased=by["erased"], other=by["other"])
