"""The scorecard as one self-contained HTML page.

``render_html(scorecard)`` returns the page: inline CSS, inline SVG charts (``charts``) — time
to resolution, approval wait by role, outcomes over time, cost per workflow —, the measures
and the tables behind them (``steward.report.text.tables``, as the terminal shows them), and a
table of threads, each linking to its timeline further down (who did what, when; its
approvals with each approver's vote and comment). No script, no stylesheet, font or image
from elsewhere: the page shows the same offline. Everything that comes from the trail (ids,
names, reasons, comments, payload text) is escaped.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Sequence

from steward.report import charts
from steward.report.fmt import money, rate, seconds, stamp
from steward.report.scorecard import CATEGORIES, Scorecard, ThreadSummary, Timeline
from steward.report.text import measures, scope_parts, tables

__all__ = ["anchor", "render_html"]

# Time to resolution, in bins a person reads: up to a second, a minute, ... a week, beyond.
_RESOLUTION_BINS = ((1.0, "≤1s"), (10.0, "≤10s"), (60.0, "≤1m"), (600.0, "≤10m"),
                    (3600.0, "≤1h"), (86400.0, "≤1d"), (7 * 86400.0, "≤1w"))

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.scope { color: #555; margin-bottom: 16px; }
.empty { background: #fff3cd; border: 1px solid #e0c36c; padding: 8px 12px; border-radius: 6px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 10px; }
.tile { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 12px; }
.tile b { display: block; font-size: 22px; } .tile span { color: #666; font-size: 12px; }
.ok b { color: #2e7d32; } .bad b { color: #c62828; } .none b { color: #777; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
          gap: 12px; margin-top: 16px; }
figure { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; margin: 0;
         padding: 10px 12px; }
svg.chart { width: 100%; height: auto; max-height: 260px; }
figcaption { color: #555; font-size: 12px; margin-top: 4px; }
table { border-collapse: collapse; background: #fff; width: 100%; margin-bottom: 6px; }
th, td { border: 1px solid #dde1e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; } td.n { text-align: right; }
.finding td { background: #fdecea; }
section.timeline { background: #fff; border: 1px solid #dde1e6; border-radius: 8px;
                   padding: 10px 12px; margin: 12px 0; scroll-margin-top: 12px; }
section.timeline:target { border: 2px solid #3f6fb5; box-shadow: 0 0 0 3px #dbe6f6; }
.meta { color: #555; margin-bottom: 6px; } .who { white-space: nowrap; }
.k { color: #666; font-family: ui-monospace, monospace; font-size: 12px; }
a { color: #1f5fae; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def anchor(thread_id: str) -> str:
    """The id of a thread's timeline section (thread ids may hold any character)."""
    return "t-" + hashlib.sha256(thread_id.encode()).hexdigest()[:16]


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: int = 0,
           row_class: str = "") -> str:
    """An escaped table; the last ``numeric`` columns right-aligned."""
    cls = f' class="{row_class}"' if row_class else ""
    out = ["<table><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        cells = [f'<td{" class=n" if i >= len(row) - numeric else ""}>{_e(v)}</td>'
                 for i, v in enumerate(row)]
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _tile(value: object, label: str, tone: str = "") -> str:
    return f'<div class="tile {tone}"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _tiles(sc: Scorecard) -> str:
    c, r, a, e = sc.completion, sc.recovery, sc.audit, sc.efficiency
    audit = ("nothing to check", "none") if a.complete is None else \
        ("complete", "ok") if a.complete else (f"{len(a.findings)} findings", "bad")
    return '<div class="tiles">' + "".join([
        _tile(c.threads, "threads"),
        _tile(f"{c.finished} ({rate(c.rate)})", "finished"),
        _tile(c.waiting, "waiting on people"),
        _tile(c.failed, "failed", "bad" if c.failed else ""),
        _tile(c.stalled, "stalled", "bad" if c.stalled else ""),
        _tile(f"{r.recovered}/{r.interrupted}", "interrupted runs recovered"),
        _tile(audit[0], "audit", audit[1]),
        _tile(money(e.cost), "model cost"),
    ]) + "</div>"


def _charts(sc: Scorecard) -> str:
    e = sc.efficiency
    resolved = [t.time_to_resolution for t in sc.threads if t.time_to_resolution is not None]
    ttr = e.time_to_resolution
    waits = [(role, d.median or 0.0, f"median {seconds(d.median)}, p90 {seconds(d.p90)}")
             for role, d in e.approval_wait.items()]
    costs = [(w.workflow, w.cost or 0.0, f"{money(w.cost)} ({money(w.cost_per_thread)}/thread)")
             for w in e.workflows if w.cost is not None]
    figures = [
        ("Time to resolution", charts.histogram(
            "chart-resolution", "Time to resolution of finished threads", resolved,
            _RESOLUTION_BINS), f"{ttr.count} finished; median {seconds(ttr.median)}, p90 "
                               f"{seconds(ttr.p90)}, max {seconds(ttr.max)}"),
        ("Approval wait by role", charts.bars(
            "chart-approval-wait", "Median wait from approval request to vote, by role", waits),
         f"votes: {sum(d.count for d in e.approval_wait.values())}; requests still open: "
         f"{len(e.open_requests)}"),
        ("Outcomes over time", charts.stacked(
            "chart-outcomes", "Threads per day started (UTC), by how they stand", sc.days,
            CATEGORIES), "threads by the day they started (UTC), colored by how they stand"),
        ("Cost per workflow", charts.bars("chart-cost", "Model cost per workflow", costs),
         f"total {money(e.cost)}; {e.input_tokens} tokens in, {e.output_tokens} out"),
    ]
    return '<div class="charts">' + "".join(
        f"<figure><h3>{_e(title)}</h3>{svg}<figcaption>{_e(caption)}</figcaption></figure>"
        for title, svg, caption in figures) + "</div>"


def _details(sc: Scorecard) -> str:
    return "".join(f"<h2>{_e(t.title)}</h2>" + _table(t.header, t.rows, numeric=t.numeric,
                                                       row_class="finding" if t.alarm else "")
                   for t in tables(sc))


def _threads(threads: Sequence[ThreadSummary], linked: bool) -> str:
    rows = []
    for t in threads:
        name = (f'<a href="#{anchor(t.thread_id)}">{_e(t.thread_id)}</a>' if linked
                else _e(t.thread_id))
        status = t.category + (f": {t.detail}" if t.detail else "")
        cells = [name, _e(t.workflow or "-"), _e(t.owner or "-"), _e(status),
                 _e(stamp(t.created_at)), _e(t.steps), _e(t.model_calls), _e(money(t.cost)),
                 _e(seconds(t.time_to_resolution))]
        rows.append("<tr>" + "".join(
            f'<td{" class=n" if i >= 5 else ""}>{c}</td>' for i, c in enumerate(cells)) + "</tr>")
    head = ("thread", "workflow", "owner", "status", "started (UTC)", "steps", "model calls",
            "cost", "resolution")
    return ('<h2 id="threads">Threads</h2><table><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def _timeline(summary: ThreadSummary, told: Timeline) -> str:
    meta = (f"{summary.workflow or 'no workflow name'} · owner {summary.owner or '-'} · "
            f"{summary.category}{': ' + summary.detail if summary.detail else ''} · started "
            f"{stamp(summary.created_at)} UTC")
    parts = [f'<section class="timeline" id="{anchor(told.thread_id)}">'
             f"<h3>{_e(told.thread_id)}</h3><div class=meta>{_e(meta)} · "
             f'<a href="#threads">back to the threads</a></div>']
    if told.approvals:
        parts.append(_table(
            ("approval", "action", "roles", "asked by", "status", "asked", "decided", "votes"),
            [(a.request_id, a.action, ", ".join(a.roles), a.requested_by, a.status,
              stamp(a.created_at), stamp(a.decided_at),
              "; ".join(f"{v.voter} ({v.role}) {v.decision} at {stamp(v.at)}"
                        + (f": “{v.comment}”" if v.comment else "") for v in a.votes) or "-")
             for a in told.approvals]))
    rows = [(stamp(x.at), x.seq if x.seq is not None else "-",
             f"{x.who or '-'}" + (f" ({x.tenant})" if x.kind == "access_refused" else ""),
             x.node or "", x.text) for x in told.entries]
    parts.append(_table(("when (UTC)", "seq", "who", "node", "what"), rows))
    if told.left_out:
        parts.append(f"<p class=meta>{told.left_out} more events in the middle are left out; "
                     "rt.audit.events has them all.</p>")
    parts.append("</section>")
    return "".join(parts)


def render_html(sc: Scorecard, *, title: str = "Steward scorecard") -> str:
    """The page (see the module). The timelines are those the scorecard carries
    (``rt.report(..., timelines=True)``); without them the threads are not linked."""
    s = sc.scope
    body = [f"<h1>{_e(title)}</h1><div class=scope>{_e(' · '.join(scope_parts(sc)))}</div>"]
    if sc.empty:
        body.append('<p class="empty">No threads in the period: every figure is zero, and '
                    "no chain was checked.</p>")
    body += [_tiles(sc), _charts(sc), "<h2>Scorecard</h2>",
             _table(("section", "measure", "value"), measures(sc))]
    if not sc.empty:
        body += [_details(sc), _threads(sc.threads, bool(sc.timelines))]
        told = [(t, sc.timelines[t.thread_id]) for t in sc.threads
                if t.thread_id in sc.timelines]
        if told:
            body.append("<h2>Timelines</h2>" + "".join(_timeline(t, x) for t, x in told))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            # Nothing but this page's own inline style may load or run, whatever it shows.
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            'style-src \'unsafe-inline\'">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)} — {_e(s.tenant)}</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>")
