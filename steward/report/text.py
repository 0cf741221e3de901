"""The scorecard in a terminal: a table of measures, then the tables behind them.

``render_text(scorecard, console)`` prints, with rich (imported when called): the scope; the
scorecard (completion, recovery, governance, audit, efficiency, one measure a row); the tables
behind it (``tables``, which the HTML page shows too): per workflow steps, time to
resolution, tokens and cost; approval wait by role and the requests still open; tool, model
and effect latency; the audit findings; interrupted runs; other tenants refused; shadow-policy
disagreements; and the threads (the first ``THREADS``; ``--json`` and ``--html`` have them
all). An empty scope says
"no threads in the period" and reports zeros: it never calls the audit complete. Data is
printed as it is (no markup), so brackets in ids and reasons stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from steward.report.fmt import counts, day_span, money, rate, seconds, stamp
from steward.report.scorecard import Scorecard

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["THREADS", "Detail", "measures", "render_text", "scope_parts", "tables"]

THREADS = 30


def _audit(sc: Scorecard) -> str:
    a = sc.audit
    if a.complete is None:
        return "nothing to check: no thread in the scope"
    state = "complete" if a.complete else f"INCOMPLETE: {len(a.findings)} finding(s)"
    return (f"{state}; {a.chains_verified}/{a.chains} chains verified ({a.events} events); "
            f"{a.effects} effects: {a.effects_guarded} guarded, {a.effects_needing_approval} "
            f"needed approval, {a.effects_approved} approved; personal data in "
            f"{a.events_with_personal_data} events")


def measures(sc: Scorecard) -> list[tuple[str, str, str]]:
    """The scorecard as (section, measure, value) rows, as the terminal table shows them."""
    c, r, g, e = sc.completion, sc.recovery, sc.governance, sc.efficiency
    return [
        ("completion", "threads", f"{c.threads}" + (" (no threads in the period)"
                                                    if sc.empty else "")),
        ("completion", "finished", f"{c.finished} ({rate(c.rate)}): {c.finished_unassisted} "
                                   f"without approval, {c.finished_after_approval} after "
                                   f"approvals; outcomes: {counts(c.outcomes)}"),
        ("completion", "waiting", f"{c.waiting} (on: {counts(c.waiting_on)})"),
        ("completion", "failed", f"{c.failed} ({counts(c.failed_by)})"),
        ("completion", "stalled / running / erased", f"{c.stalled} / {c.running} / {c.erased}"),
        ("recovery", "runs interrupted", f"{r.interrupted} ({counts(r.by_cause)})"),
        ("recovery", "resumed / recovered", f"{r.resumed} / {r.recovered} ({rate(r.rate)} "
                                            "finished since)"),
        ("recovery", "time to resume", f"median {seconds(r.time_to_resume.median)}, p90 "
                                       f"{seconds(r.time_to_resume.p90)}"),
        ("recovery", "effects replayed / retried", f"{r.effect_replays} / {r.effect_retries}"),
        ("governance", "guarded calls", f"{g.guarded_calls}: {g.allowed} allowed, {g.denied} "
                                        f"denied, {g.sent_for_approval} sent for approval "
                                        f"({g.standing_uses} passed on standing approvals)"),
        ("governance", "approvals", counts(g.approvals)),
        ("governance", "refused votes", f"{sum(g.refused_votes.values())} "
                                        f"({counts(g.refused_votes)}); self-approvals refused: "
                                        f"{g.self_approvals_refused}"),
        ("governance", "other tenants refused", f"{g.cross_tenant_refused}"),
        ("governance", "violations prevented", f"{g.prevented} (denied, approval rejected "
                                               "or expired)"),
        ("governance", "shadow-policy disagreements", f"{len(g.shadow_disagreements)}"),
        ("audit", "completeness", _audit(sc)),
        ("efficiency", "time to resolution", f"median {seconds(e.time_to_resolution.median)}, "
                                             f"p90 {seconds(e.time_to_resolution.p90)} "
                                             f"({e.time_to_resolution.count} finished)"),
        ("efficiency", "steps per thread", f"mean {e.steps.mean or 0:.1f}, median "
                                           f"{e.steps.median or 0:g}, p90 {e.steps.p90 or 0:g}"),
        ("efficiency", "approval wait", "; ".join(
            f"{role}: median {seconds(d.median)}, p90 {seconds(d.p90)} ({d.count})"
            for role, d in e.approval_wait.items()) or "no votes"),
        ("efficiency", "open approval requests", f"{len(e.open_requests)}" + (
            f", oldest {seconds(max(o.age for o in e.open_requests))}"
            if e.open_requests else "")),
        ("efficiency", "tokens / cost", f"{e.input_tokens} in, {e.output_tokens} out; "
                                        f"{money(e.cost)}"),
    ]


class Detail(NamedTuple):
    """One table behind the measures, in text, as both renderers show it: its ``title``,
    ``header`` and ``rows``; the last ``numeric`` columns are figures (aligned right);
    ``alarm``: each row is something wrong (the audit's findings)."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: int = 0
    alarm: bool = False


def scope_parts(sc: Scorecard) -> list[str]:
    """What the scorecard covers, in words (the tenant, the period, the names, who read it
    when), for each renderer to join its way."""
    s = sc.scope
    return [f"tenant {s.tenant}", f"threads started {day_span(s.since, s.until)}",
            *([f"workflow {s.workflow}"] if s.workflow else []),
            *([f"thread {s.thread}"] if s.thread else []),
            f"read by {s.by} at {stamp(s.generated_at)} UTC"]


def _step(step: int | None, node: str | None) -> str:
    return " ".join(x for x in (f"step {step}" if step is not None else "", node or "") if x) \
        or "-"


def tables(sc: Scorecard) -> list[Detail]:
    """The tables behind the measures, those with rows, written once so that the terminal and
    the HTML page show the same."""
    e, g = sc.efficiency, sc.governance
    found = [
        Detail("Per workflow (per thread: mean steps and model calls)",
               ("workflow", "threads", "finished", "steps/thread", "model calls/thread",
                "resolution median", "p90", "tokens in/out", "cost", "cost/thread"),
               [(w.workflow, str(w.threads), str(w.finished), f"{w.steps.mean or 0:.1f}",
                 f"{w.model_calls.mean or 0:.1f}", seconds(w.time_to_resolution.median),
                 seconds(w.time_to_resolution.p90), f"{w.input_tokens}/{w.output_tokens}",
                 money(w.cost), money(w.cost_per_thread)) for w in e.workflows], numeric=9),
        Detail("Where humans wait: from request to vote, by the voter's role",
               ("role", "votes", "median", "p90", "max"),
               [(role, str(d.count), seconds(d.median), seconds(d.p90), seconds(d.max))
                for role, d in e.approval_wait.items()], numeric=4),
        Detail("Approval requests still open",
               ("request", "thread", "action", "roles", "votes", "waiting", "expires (UTC)"),
               [(o.request_id, o.thread_id, o.action, ", ".join(o.roles),
                 f"{o.votes}/{o.quorum}", seconds(o.age), stamp(o.expires_at))
                for o in e.open_requests]),
        Detail("Latency", ("kind", "name", "calls", "errors", "median", "p90", "max"),
               [(kind, x.name, str(x.calls), str(x.errors), seconds(x.seconds.median),
                 seconds(x.seconds.p90), seconds(x.seconds.max))
                for kind, rows in (("tool", e.tools), ("model", e.models),
                                   ("effect", e.effects)) for x in rows], numeric=5),
        Detail("Audit findings", ("check", "thread", "seq", "detail"),
               [(f.check, f.thread_id, str(f.seq) if f.seq is not None else "-", f.detail)
                for f in sc.audit.findings], alarm=True),
        Detail("Interrupted runs",
               ("thread", "cause", "stopped", "at (UTC)", "resumed", "recovered"),
               [(i.thread_id, i.cause + (f" ({i.error})" if i.error else ""),
                 _step(i.step, i.node), stamp(i.at),
                 f"{_step(i.resumed_step, i.resumed_node)} at {stamp(i.resumed_at)}"
                 if i.resumed_at is not None else "-", "yes" if i.recovered else "no")
                for i in sc.recovery.interruptions]),
        Detail("Other tenants refused", ("principal", "tenant", "thread", "asked", "at (UTC)"),
               [(r.principal_id or "-", r.tenant or "-", r.thread_id, r.need or "-",
                 stamp(r.at)) for r in g.cross_tenant]),
        Detail("Shadow-policy disagreements",
               ("thread", "action", "enforced", "shadow", "shadow policies"),
               [(d.thread_id, d.action, d.enforced, ", ".join(d.shadow), ", ".join(d.policy_ids))
                for d in g.shadow_disagreements]),
    ]
    return [t for t in found if t.rows]


def _table(title: str, *columns: str, numeric: int = 0) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for i, name in enumerate(columns):
        table.add_column(name, overflow="fold",
                         justify="right" if i >= len(columns) - numeric else "left")
    return table


def render_text(sc: Scorecard, console: Console | None = None) -> None:
    """Print the scorecard (see the module) on ``console`` (default: stdout, no markup)."""
    from rich.console import Console

    out = console or Console(markup=False, highlight=False)
    out.print("Steward scorecard — " + "; ".join(scope_parts(sc)), soft_wrap=True)
    if sc.empty:
        out.print("no threads in the period: every figure is zero, and no chain was checked")
    table = _table("Scorecard", "section", "measure", "value")
    for row in measures(sc):
        table.add_row(*row)
    out.print(table)
    if sc.empty:
        return
    for detail in tables(sc):
        shown = _table(detail.title, *detail.header, numeric=detail.numeric)
        for cells in detail.rows:
            shown.add_row(*cells, style="red" if detail.alarm else None)
        out.print(shown)
    threads = _table("Threads", "thread", "workflow", "status", "steps", "model calls", "cost",
                     "resolution", numeric=4)
    for t in sc.threads[:THREADS]:
        threads.add_row(t.thread_id, t.workflow or "-", t.category + (
            f": {t.detail}" if t.detail else ""), str(t.steps), str(t.model_calls),
            money(t.cost), seconds(t.time_to_resolution))
    out.print(threads)
    if len(sc.threads) > THREADS:
        out.print(f"... and {len(sc.threads) - THREADS} more threads (--json or --html list "
                  "them all)")
