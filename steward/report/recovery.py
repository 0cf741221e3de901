"""Recovery: runs that stopped short, found in the order of each thread's run events.

A run opens with ``run_start`` or ``resume`` and stops with ``run_end``, ``run_paused`` or
``run_error``. Over those events of each thread, in chain order (a window ``LEAD`` in SQL):

- a **crash** is a run that opened and never stopped: the next run event is another opening
  (its process died; the events it had written stay, the rest was never stored). A thread whose
  last run died that way and that nobody resumed yet is ``stalled``;
- an **error** is a ``run_error`` other than the refusals that are governance's (``PolicyDenied``:
  the policy or an approver said no; ``ApprovalInvalid``: a vote the approval rules refused,
  the thread still waiting);
- a **retry** is a node that failed and ran again in the same run (a retry policy), or a tool
  call that failed and was called again in the same run and step.

Where it stopped is the last event with a node before the cut; where it was taken up, the
first ``node_start`` of the next run (for a retry: the node or tool call that ran again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steward.report.scorecard import Interruption, Recovery, Scope, ThreadSummary
from steward.report.sql import ReportSql
from steward.storage.ops import Op, Stmt

__all__ = ["recovery_op"]

_OPEN = "('run_start', 'resume')"
_RUN = "('run_start', 'resume', 'run_end', 'run_paused', 'run_error')"
_GOVERNANCE = "('PolicyDenied', 'ApprovalInvalid')"


def _cuts(q: ReportSql, cte: str) -> str:
    """Interrupted runs: (thread, cause, error, last seq of the stopped run, seq and time of
    the next run's opening), with where it stopped and where the next run started."""
    where_node = ("SELECT {col} FROM steward_audit x WHERE x.thread_id = c.thread_id AND "
                  "x.seq <= c.stop_seq AND x.node IS NOT NULL ORDER BY x.seq DESC LIMIT 1")
    next_node = ("SELECT {col} FROM steward_audit y WHERE y.thread_id = c.thread_id AND "
                 "y.seq > c.nseq AND y.kind = 'node_start' ORDER BY y.seq LIMIT 1")
    return f"""{cte},
runs AS (SELECT a.thread_id, a.seq, a.kind, a.at, {q.text('a.payload', 'error')} AS err,
                LEAD(a.kind) OVER (PARTITION BY a.thread_id ORDER BY a.seq) AS nkind,
                LEAD(a.seq) OVER (PARTITION BY a.thread_id ORDER BY a.seq) AS nseq,
                LEAD(a.at) OVER (PARTITION BY a.thread_id ORDER BY a.seq) AS nat
         FROM steward_audit a
         WHERE a.thread_id IN (SELECT thread_id FROM scope) AND a.kind IN {_RUN}),
cuts AS (SELECT r.thread_id, CASE WHEN r.kind = 'run_error' THEN 'error' ELSE 'crash' END
                    AS cause, r.err,
                CASE WHEN r.kind = 'run_error' THEN r.seq
                     WHEN r.nseq IS NOT NULL THEN r.nseq - 1
                     ELSE (SELECT max(z.seq) FROM steward_audit z
                           WHERE z.thread_id = r.thread_id) END AS stop_seq,
                r.nseq, r.nat
         FROM runs r
         WHERE (r.kind IN {_OPEN} AND (r.nkind IN {_OPEN} OR r.nkind IS NULL))
            OR (r.kind = 'run_error' AND coalesce(r.err, '') NOT IN {_GOVERNANCE}))
SELECT c.thread_id, c.cause, c.err, c.nseq, c.nat,
       (SELECT x.at FROM steward_audit x WHERE x.thread_id = c.thread_id
        AND x.seq <= c.stop_seq ORDER BY x.seq DESC LIMIT 1),
       ({where_node.format(col='x.step')}), ({where_node.format(col='x.node')}),
       ({next_node.format(col='y.step')}), ({next_node.format(col='y.node')})
FROM cuts c ORDER BY c.thread_id, c.stop_seq"""


def _retries(q: ReportSql, cte: str) -> str:
    """Failed nodes and tool calls that ran again in the same run."""
    tool_e = q.text("e.payload", "tool")
    return f"""{cte}
SELECT e.thread_id, e.at, e.step, e.node, {q.text('e.payload', 'error')}, n.at, n.step, n.node
FROM steward_audit e JOIN steward_audit n ON n.thread_id = e.thread_id AND n.seq = (
    SELECT min(m.seq) FROM steward_audit m WHERE m.thread_id = e.thread_id AND m.seq > e.seq
    AND m.run_id = e.run_id AND ((e.kind = 'node_error' AND m.kind = 'node_start'
    AND m.node = e.node) OR (e.kind = 'tool_error' AND m.kind = 'tool_call'
    AND {q.text('m.payload', 'tool')} = {tool_e})))
WHERE e.thread_id IN (SELECT thread_id FROM scope) AND e.kind IN ('node_error', 'tool_error')
ORDER BY e.thread_id, e.seq"""


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def recovery_op(q: ReportSql, scope: Scope,
                threads: Mapping[str, ThreadSummary]) -> Op[Recovery]:
    cte, params = q.scope(scope)
    cuts, retried, ledger = yield (
        Stmt(_cuts(q, cte), params),
        Stmt(_retries(q, cte), params),
        Stmt(f"{cte} SELECT kind, count(*) FROM steward_audit WHERE thread_id IN (SELECT "
             "thread_id FROM scope) AND kind IN ('effect_replay', 'effect_retry') GROUP BY kind",
             params),
    )
    out: list[Interruption] = []
    for tid, cause, err, nseq, nat, at, step, node, nstep, nnode in cuts.rows:
        summary = threads.get(tid)
        if summary is None:
            continue
        if cause == "crash" and nseq is None and summary.category != "stalled":
            continue  # the last run of a thread that is running, or left by other means
        out.append(Interruption(
            tid, summary.workflow, cause, str(err) if err is not None else None, float(at),
            _int(step), node, float(nat) if nat is not None else None, _int(nstep), nnode,
            summary.category == "finished"))
    for tid, at, step, node, err, nat, nstep, nnode in retried.rows:
        summary = threads.get(tid)
        if summary is None:
            continue
        out.append(Interruption(tid, summary.workflow, "retry",
                                str(err) if err is not None else None, float(at), _int(step),
                                node, float(nat), _int(nstep), nnode,
                                summary.category == "finished"))
    counts = {kind: int(n) for kind, n in ledger.rows}
    return Recovery(tuple(sorted(out, key=lambda i: (i.at, i.thread_id))),
                    counts.get("effect_replay", 0), counts.get("effect_retry", 0))
