"""The scorecard of a tenant's workflows, read from its audit trail: ``rt.report(principal,
...)`` (``areport``), ``steward report`` on the command line.

- ``scorecard``: the data (``Scorecard`` and its sections: completion, recovery, governance,
  audit completeness, efficiency; threads and their timelines);
- ``reporter``: how it is read (the access check, the scope, the transactions);
- ``sql``, ``threads``, ``recovery``, ``governance``, ``completeness``, ``efficiency``: the
  statements of each section and what is computed from their rows; ``stats``: medians and
  p90s; ``timeline``: a thread's events told in lines; ``period``: ``since``/``until``;
- ``text``, ``html``, ``charts``: the scorecard as a terminal table, and as one
  self-contained HTML page with inline SVG charts.
"""

from steward.report.html import render_html
from steward.report.period import parse_when
from steward.report.scorecard import (
    CATEGORIES,
    ApprovalRecord,
    AuditCompleteness,
    Completion,
    Efficiency,
    Finding,
    Governance,
    Interruption,
    Latency,
    OpenRequest,
    Recovery,
    Refusal,
    Scope,
    Scorecard,
    ShadowDisagreement,
    ThreadSummary,
    Timeline,
    TimelineEntry,
    VoteRecord,
    WorkflowStats,
)
from steward.report.stats import Dist
from steward.report.text import measures, render_text

__all__ = [
    "CATEGORIES",
    "ApprovalRecord",
    "AuditCompleteness",
    "Completion",
    "Dist",
    "Efficiency",
    "Finding",
    "Governance",
    "Interruption",
    "Latency",
    "OpenRequest",
    "Recovery",
    "Refusal",
    "Scope",
    "Scorecard",
    "ShadowDisagreement",
    "ThreadSummary",
    "Timeline",
    "TimelineEntry",
    "VoteRecord",
    "WorkflowStats",
    "measures",
    "parse_when",
    "render_html",
    "render_text",
]
