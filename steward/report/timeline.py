"""A thread's timeline: who did what, when, told in one line per event.

Built from the events the audit-completeness pass reads anyway (a thread's whole chain), the
thread's approval requests with their votes, and the refusals of other tenants' principals on
it. Node starts and the interrupt events that repeat an approval request are left out (the
node's end and the request say it); a timeline keeps at most ``LIMIT`` entries, its first
ones and its last ones, and says how many it left out. The lines hold payload text as it was
stored (redacted when recorded): renderers escape it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from steward.audit.chain import Event
from steward.report.scorecard import ApprovalRecord, Refusal, Timeline, TimelineEntry

__all__ = ["LIMIT", "describe", "timeline"]

LIMIT = 400
_SKIP = {"node_start", "interrupt"}


def _cut(value: Any, n: int = 160) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= n else text[:n - 1] + "…"


def _seconds(duration: float | None) -> str:
    if duration is None:
        return ""
    return f" ({duration * 1000:.0f} ms)" if duration < 1 else f" ({duration:.1f} s)"


def _decision(p: Mapping[str, Any]) -> str:
    found = p.get("decision")
    decision: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    effect = str(decision.get("effect", "?"))
    reasons = "; ".join(str(r) for r in decision.get("reasons") or ())
    roles = decision.get("roles")
    what = {"allow": "allowed", "deny": "denied",
            "approval": f"needs approval by {', '.join(map(str, roles or ()))}"}.get(effect,
                                                                                   effect)
    return f"guard {p.get('action')}: {what}" + (f" — {_cut(reasons)}" if reasons else "")


_TEXTS: dict[str, Callable[[Mapping[str, Any], Event], str]] = {
    "run_start": lambda p, e: "run started" + (f" ({p['workflow']})" if p.get("workflow")
                                               else ""),
    "resume": lambda p, e: f"resumed with {_cut(p.get('resume'), 120)}",
    "run_end": lambda p, e: "run ended" + (
        f": {(p.get('outcome') or {}).get('status')}" if p.get("outcome") else "")
        + _seconds(e.duration),
    "run_paused": lambda p, e: "run paused, waiting" + _seconds(e.duration),
    "run_error": lambda p, e: f"run failed: {p.get('error')}: {_cut(p.get('message', ''))}",
    "node_end": lambda p, e: f"step {e.step} {e.node} done{_seconds(e.duration)}",
    "node_error": lambda p, e: f"step {e.step} {e.node} failed: {p.get('error')}: "
                               f"{_cut(p.get('message', ''))}",
    "guard": lambda p, e: _decision(p),
    "approval_request": lambda p, e: (
        f"asked {', '.join(map(str, p.get('required_roles') or ()))} to approve "
        f"{p.get('action')} ({p.get('id')})"
        + (f": {_cut('; '.join(map(str, p.get('reasons') or ())))}" if p.get("reasons") else "")),
    "approval_vote": lambda p, e: (
        f"voted {p.get('decision')} as {p.get('role')} on {p.get('request_id')}"
        + (f": “{_cut(p.get('comment'))}”" if p.get("comment") else "")),
    "approval_outcome": lambda p, e: (
        f"{p.get('request_id')} "
        f"{'approved' if p.get('decision') == 'approve' else p.get('decision')} by "
        f"{', '.join(map(str, p.get('approvers') or ())) or 'nobody'}"),
    "approval_invalid": lambda p, e: f"vote refused ({p.get('rule') or 'refused'}): "
                                     f"{_cut(p.get('reason', ''))}",
    "approval_expired": lambda p, e: f"{p.get('request_id')} expired",
    "approval_escalated": lambda p, e: f"{p.get('request_id')} escalated to "
                                       f"{', '.join(map(str, p.get('required_roles') or ()))}",
    "approval_standing_use": lambda p, e: f"{p.get('action')} passed on standing approval "
                                          f"{p.get('standing_id')} of {p.get('granted_by')}",
    "effect_call": lambda p, e: f"effect {p.get('effect')} called",
    "effect_replay": lambda p, e: f"effect {p.get('effect')} replayed (not repeated)",
    "effect_retry": lambda p, e: f"effect {p.get('effect')} retried under its key",
    "model_call": lambda p, e: (
        f"model {p.get('model')}: {p.get('input_tokens')} in / {p.get('output_tokens')} out"
        + (f", ${p['cost']:.6f}" if isinstance(p.get("cost"), (int, float)) else "")
        + _seconds(e.duration)),
    "model_error": lambda p, e: f"model {p.get('model')} failed: {p.get('error')}",
    "tool_call": lambda p, e: f"tool {p.get('tool')} called",
    "tool_result": lambda p, e: f"tool {p.get('tool')} returned{_seconds(e.duration)}",
    "tool_error": lambda p, e: f"tool {p.get('tool')} failed: {p.get('error')}: "
                               f"{_cut(p.get('message', ''))}",
}


def describe(event: Event) -> str | None:
    """One line for an event; None for those a timeline leaves out."""
    if event.kind in _SKIP:
        return None
    if event.erased:
        return f"{event.kind} (payload erased: {event.erased})"
    text = _TEXTS.get(event.kind)
    return text(event.payload, event) if text is not None else event.kind.replace("_", " ")


def timeline(thread_id: str, events: Sequence[Event], approvals: Iterable[ApprovalRecord] = (),
             refusals: Iterable[Refusal] = ()) -> Timeline:
    """The timeline of one thread (see the module)."""
    entries = [TimelineEntry(e.seq, e.at, e.principal_id, e.tenant, e.kind, e.node, text)
               for e in events if (text := describe(e)) is not None]
    entries += [TimelineEntry(None, r.at, r.principal_id, r.tenant, "access_refused", None,
                              f"refused {r.principal_id} of tenant {r.tenant}: {r.need}")
                for r in refusals]
    entries.sort(key=lambda t: (t.at, t.seq if t.seq is not None else 0))
    left_out = max(0, len(entries) - LIMIT)
    if left_out:
        entries = entries[:LIMIT // 2] + entries[-(LIMIT // 2):]
    return Timeline(thread_id, tuple(entries), tuple(approvals), left_out)
