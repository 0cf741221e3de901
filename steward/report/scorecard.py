"""The scorecard: how a tenant's workflows did, read from their audit trail.

One :class:`Scorecard` has five sections, the measures the seeds ask for: ``completion`` (how
threads ended), ``recovery`` (runs interrupted by a crash, an error or a retry, and whether the
thread got over it), ``governance`` (guarded calls, approvals, refused votes and other tenants'
attempts, shadow policies), ``audit`` (audit completeness: every effect with its guard decision
and approval, every chain verified, no personal data left in events) and ``efficiency`` (steps,
model calls, time to resolution, human wait per approval role, latency per tool, tokens and
cost per workflow); ``threads`` lists each thread in the scope, and ``timelines`` (when asked
for) what happened in each. Plain frozen data: ``to_dict()`` is the JSON form.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from steward.report.stats import Dist

__all__ = [
    "CATEGORIES",
    "ApprovalRecord",
    "AuditCompleteness",
    "Completion",
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
]

# How a thread stands: its last run ended (finished) or raised (failed); it waits on an
# interrupt (waiting); a run holds it (running) or held it and died (stalled); an erasure
# emptied it (erased); none of these (other: idle, and no run of it ended or failed).
CATEGORIES = ("finished", "waiting", "failed", "stalled", "running", "erased", "other")
UNNAMED = "(unnamed)"  # the workflow of threads whose runs named none


def _plain(value: Any) -> Any:
    """JSON-ready data: dataclasses as dicts with their computed ``_computed`` properties."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in getattr(value, "_computed", ()):
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Scope:
    """What a scorecard covers: a tenant's threads started in [since, until) (epoch seconds;
    None: unbounded), of one workflow or one thread if named, read by ``by``."""

    tenant: str
    by: str
    workflow: str | None = None
    thread: str | None = None
    since: float | None = None
    until: float | None = None
    generated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ThreadSummary:
    """One thread: how it stands (``category``, and ``detail``: the outcome status its last
    run recorded when finished, whom it waits on, the error kind when failed) and what it
    took."""

    _computed = ("time_to_resolution",)

    thread_id: str
    workflow: str | None
    owner: str | None
    category: str
    detail: str | None
    created_at: float
    updated_at: float
    resolved_at: float | None
    events: int
    steps: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    unpriced_calls: int
    approvals: int

    @property
    def time_to_resolution(self) -> float | None:
        """Seconds from the thread's creation to the end of its last run, when finished."""
        return self.resolved_at - self.created_at if self.resolved_at is not None else None


@dataclass(frozen=True)
class Completion:
    """How the threads stand. ``finished`` splits into threads that never asked for an
    approval and those that finished after approvals; ``outcomes`` counts the finished ones by
    the outcome status their final state recorded ("-" when it recorded none)."""

    _computed = ("rate",)

    threads: int = 0
    finished: int = 0
    finished_unassisted: int = 0
    finished_after_approval: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    waiting: int = 0
    waiting_on: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    failed_by: dict[str, int] = field(default_factory=dict)
    stalled: int = 0
    running: int = 0
    erased: int = 0
    other: int = 0

    @property
    def rate(self) -> float | None:
        """Finished threads over all threads; None when there are none."""
        return _rate(self.finished, self.threads)


@dataclass(frozen=True)
class Interruption:
    """A run that stopped short: its process died (``crash``), it raised (``error``, with the
    error's kind; refusals by policy or by the approval rules are governance, not faults), or
    a node or tool failed and was tried again within the run (``retry``). ``at``/``step``/
    ``node``: where it stopped; ``resumed_*``: where the next run took the thread up (None:
    nobody did); ``recovered``: the thread has finished since."""

    thread_id: str
    workflow: str | None
    cause: str
    error: str | None
    at: float
    step: int | None
    node: str | None
    resumed_at: float | None
    resumed_step: int | None
    resumed_node: str | None
    recovered: bool


@dataclass(frozen=True)
class Recovery:
    """Interrupted runs and how the threads came back; ``effect_replays``: side effects a
    re-run node did not repeat (the effect ledger returned the recorded result),
    ``effect_retries``: calls retried under the same idempotency key after dying mid-call."""

    _computed = ("interrupted", "by_cause", "resumed", "recovered", "rate", "time_to_resume")

    interruptions: tuple[Interruption, ...] = ()
    effect_replays: int = 0
    effect_retries: int = 0

    @property
    def interrupted(self) -> int:
        return len(self.interruptions)

    @property
    def by_cause(self) -> dict[str, int]:
        return dict(Counter(i.cause for i in self.interruptions))

    @property
    def resumed(self) -> int:
        return sum(1 for i in self.interruptions if i.resumed_at is not None)

    @property
    def recovered(self) -> int:
        return sum(1 for i in self.interruptions if i.recovered)

    @property
    def rate(self) -> float | None:
        """Interrupted runs whose thread finished since, over interrupted runs."""
        return _rate(self.recovered, self.interrupted)

    @property
    def time_to_resume(self) -> Dist:
        """Seconds from where a run stopped to the run that took the thread up."""
        return Dist.of(i.resumed_at - i.at for i in self.interruptions
                       if i.resumed_at is not None)


@dataclass(frozen=True)
class Refusal:
    """A principal of another tenant refused by the access rule on one of the threads."""

    principal_id: str | None
    tenant: str | None
    thread_id: str
    need: str | None
    at: float


@dataclass(frozen=True)
class ShadowDisagreement:
    """A guarded call where a policy set in shadow mode decided otherwise than the enforced
    one."""

    thread_id: str
    action: str
    enforced: str
    shadow: tuple[str, ...]
    policy_ids: tuple[str, ...]


@dataclass(frozen=True)
class Governance:
    """Guarded calls (each call site counted once, however often its node re-ran) by how the
    policy decided; approval requests by how they ended; votes the approval rules refused, by
    rule (``four_eyes``: a requester approving their own request); principals of other
    tenants refused; shadow-policy disagreements."""

    _computed = ("self_approvals_refused", "cross_tenant_refused", "prevented")

    guarded_calls: int = 0
    allowed: int = 0
    denied: int = 0
    sent_for_approval: int = 0
    standing_uses: int = 0
    approvals: dict[str, int] = field(default_factory=dict)
    refused_votes: dict[str, int] = field(default_factory=dict)
    cross_tenant: tuple[Refusal, ...] = ()
    shadow_disagreements: tuple[ShadowDisagreement, ...] = ()

    @property
    def self_approvals_refused(self) -> int:
        return self.refused_votes.get("four_eyes", 0)

    @property
    def cross_tenant_refused(self) -> int:
        return len(self.cross_tenant)

    @property
    def prevented(self) -> int:
        """Actions that did not happen because of a guard: calls denied, and calls whose
        approval was rejected or ran out of time."""
        return self.denied + self.approvals.get("rejected", 0) + self.approvals.get("expired", 0)


@dataclass(frozen=True)
class Finding:
    """A gap in the audit trail: ``check`` is ``unguarded_effect`` (an effect with no guard
    decision before it in its task), ``unapproved_effect`` (its guard asked for an approval
    and none was granted), ``effect_after_denial``, ``chain`` (a chain that does not verify)
    or ``personal_data`` (a payload the runtime's redactor would still change); ``seq`` is
    the event's place in the thread's chain."""

    check: str
    thread_id: str
    seq: int | None
    detail: str


@dataclass(frozen=True)
class AuditCompleteness:
    """Audit completeness: ``complete`` is True when every chain verified and no finding
    was made, None when there was nothing to check."""

    _computed = ("complete",)

    chains: int = 0
    chains_verified: int = 0
    events: int = 0
    effects: int = 0
    effects_guarded: int = 0
    effects_needing_approval: int = 0
    effects_approved: int = 0
    events_with_personal_data: int = 0
    findings: tuple[Finding, ...] = ()

    @property
    def complete(self) -> bool | None:
        if not self.chains:
            return None
        return not self.findings and self.chains_verified == self.chains


@dataclass(frozen=True)
class WorkflowStats:
    """One workflow's threads: steps and model calls per thread, time to resolution of the
    finished ones, tokens and cost (``cost`` None when no model call had a price;
    ``unpriced_calls``: model calls without one)."""

    _computed = ("cost_per_thread",)

    workflow: str
    threads: int
    finished: int
    steps: Dist
    model_calls: Dist
    time_to_resolution: Dist
    input_tokens: int
    output_tokens: int
    cost: float | None
    unpriced_calls: int

    @property
    def cost_per_thread(self) -> float | None:
        return self.cost / self.threads if self.cost is not None and self.threads else None


@dataclass(frozen=True)
class OpenRequest:
    """An approval request still waiting, and for how long (``age``, seconds)."""

    request_id: str
    thread_id: str
    action: str
    roles: tuple[str, ...]
    votes: int
    quorum: int
    created_at: float
    age: float
    expires_at: float | None


@dataclass(frozen=True)
class Latency:
    """Calls of one tool, model or effect: how many, how many failed, how long they took."""

    name: str
    calls: int
    errors: int
    seconds: Dist


@dataclass(frozen=True)
class Efficiency:
    """What the work took. ``approval_wait``: seconds from an approval request to each vote,
    by the voter's role (where humans wait); ``tools``, ``models``: latency of each tool and
    model call (the audit trail's durations); ``effects``: of each effect, from the ledger."""

    workflows: tuple[WorkflowStats, ...] = ()
    time_to_resolution: Dist = field(default_factory=Dist)
    steps: Dist = field(default_factory=Dist)
    approval_wait: dict[str, Dist] = field(default_factory=dict)
    open_requests: tuple[OpenRequest, ...] = ()
    tools: tuple[Latency, ...] = ()
    models: tuple[Latency, ...] = ()
    effects: tuple[Latency, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True)
class VoteRecord:
    voter: str
    role: str | None
    decision: str
    comment: str | None
    at: float


@dataclass(frozen=True)
class ApprovalRecord:
    """An approval request of a thread with the votes cast on it."""

    request_id: str
    action: str
    roles: tuple[str, ...]
    requested_by: str | None
    status: str
    created_at: float
    decided_at: float | None
    votes: tuple[VoteRecord, ...] = ()


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened: ``seq`` in the thread's chain (None for a refusal, which the
    tenant's access chain keeps), when, who (and of which tenant), and a line saying what."""

    seq: int | None
    at: float
    who: str | None
    tenant: str | None
    kind: str
    node: str | None
    text: str


@dataclass(frozen=True)
class Timeline:
    """A thread's story: its events in order (at most a few hundred; ``left_out`` says how
    many more there were) and its approvals with their votes."""

    thread_id: str
    entries: tuple[TimelineEntry, ...]
    approvals: tuple[ApprovalRecord, ...] = ()
    left_out: int = 0


@dataclass(frozen=True)
class Scorecard:
    """The scorecard of one scope (see the module)."""

    _computed = ("empty", "days")

    scope: Scope
    completion: Completion = field(default_factory=Completion)
    recovery: Recovery = field(default_factory=Recovery)
    governance: Governance = field(default_factory=Governance)
    audit: AuditCompleteness = field(default_factory=AuditCompleteness)
    efficiency: Efficiency = field(default_factory=Efficiency)
    threads: tuple[ThreadSummary, ...] = ()
    timelines: dict[str, Timeline] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No thread in the scope: every figure is zero, and nothing was verified."""
        return not self.threads

    @property
    def days(self) -> dict[str, dict[str, int]]:
        """Threads by the UTC day they started, and how each stands now."""
        out: dict[str, dict[str, int]] = {}
        for t in sorted(self.threads, key=lambda t: t.created_at):
            day = time.strftime("%Y-%m-%d", time.gmtime(t.created_at))
            counts = out.setdefault(day, {})
            counts[t.category] = counts.get(t.category, 0) + 1
        return out

    def broken(self) -> tuple[Finding, ...]:
        """The guarantees the trail shows broken (audit completeness findings): empty when
        every effect was guarded (and approved where asked), every chain verified and no
        payload holds personal data."""
        return self.audit.findings

    def to_dict(self) -> dict[str, Any]:
        """The scorecard as JSON-ready data (``steward report --json``)."""
        out: dict[str, Any] = _plain(self)
        return out
