"""``rt.report``: the scorecard of a tenant's threads, read from their audit trail.

Reading a tenant's whole trail needs a tenant-wide read: a principal holding a role that the
runtime's ``thread_roles`` grant ``read`` or more (the auditor's ``auditor=read`` of the
command line's defaults, an ``ops=admin``); anyone else gets ThreadAccessDenied. Every figure
is confined to the principal's tenant: the statements start from its rows of the thread table.

The figures are read in one transaction (one snapshot on SQLite; on PostgreSQL each statement
sees what was committed when it ran); then the chains are read whole, 50 threads' in one
round trip and transaction, to verify them, look for personal data and, when asked, tell each
thread's timeline. Nothing is written.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steward.audit.log import AuditLog
from steward.audit.refusals import access_chain
from steward.checkpointers.threads import Threads
from steward.errors import ConfigError
from steward.identity import Principal
from steward.report.completeness import Chains, EffectRow, completeness, effects_op
from steward.report.efficiency import efficiency_op
from steward.report.governance import governance_op
from steward.report.period import When, parse_when
from steward.report.recovery import recovery_op
from steward.report.scorecard import (
    ApprovalRecord,
    Efficiency,
    Governance,
    Recovery,
    Refusal,
    Scope,
    Scorecard,
    ThreadSummary,
    Timeline,
    VoteRecord,
)
from steward.report.sql import ReportSql
from steward.report.threads import completion, threads_op
from steward.report.timeline import timeline
from steward.storage.codec import load_json
from steward.storage.drivers import Driver
from steward.storage.ops import Op, Stmt

__all__ = ["Reporter"]

BATCH = 50  # threads whose chains one transaction reads


@dataclass(frozen=True)
class _Figures:
    threads: list[ThreadSummary]
    recovery: Recovery
    governance: Governance
    effects: list[EffectRow]
    efficiency: Efficiency
    approvals: dict[str, list[ApprovalRecord]]


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _name(value: object, what: str) -> str | None:
    """The workflow or thread to report on (None: every one), checked: a non-empty string."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    raise ConfigError(f"{what} must be a {what} name (a non-empty string) or None for every "
                      f"{what}, got {value!r}: name one in the tenant's trail, as a string.",
                      cli=f"--{what} must name a {what}, got {value!r}: give a non-empty "
                          f"--{what}, or leave it out for every {what}.")


class Reporter:
    """Builds scorecards (see the module); ``rt.report`` and ``rt.areport`` call it."""

    def __init__(self, driver: Driver, threads: Threads, audit: AuditLog) -> None:
        self.driver = driver
        self.threads = threads
        self.audit = audit
        self.sql = ReportSql(driver.dialect)

    # -- what is asked -------------------------------------------------------------------------

    def scope(self, principal: Principal | Mapping[str, Any], *, workflow: str | None,
              thread: str | None, since: When, until: When) -> Scope:
        """The scope asked for, checked: the principal's tenant-wide read, the names, the
        period (``since`` before ``until``)."""
        who = Principal.parse(principal)
        self.threads.access.check_tenant_read(who, "a report")
        now = time.time()  # durations back from the same moment: "--since 1d --until 1d" is empty
        start = parse_when(since, name="since", flag="--since", now=now)
        end = parse_when(until, name="until", flag="--until", now=now)
        if start is not None and end is not None and start >= end:
            raise ConfigError(
                f"since must be before until (got since={since!r}, until={until!r}): the "
                "period would hold no thread; give a since earlier than until.",
                cli=f"--since {since} is not before --until {until}: the period would hold no "
                    "thread; give a --since earlier than --until.")
        return Scope(who.tenant, who.id, _name(workflow, "workflow"), _name(thread, "thread"),
                     start, end)

    # -- reading ---------------------------------------------------------------------------------

    def _unknown_op(self, scope: Scope) -> Op[None]:
        """An empty scope because a named workflow or thread is not in the tenant's trail at
        all: say so (rather than report zeros for a typo)."""
        if scope.thread is not None:
            found = (yield Stmt("SELECT 1 FROM steward_threads WHERE thread_id = ? AND "
                                "tenant = ?", (scope.thread, scope.tenant))).one()
            if found is None:
                error = ConfigError(f"no thread {scope.thread!r} in tenant {scope.tenant!r}: "
                                    "check the id (rt.checkpointer.list_threads).")
                error.cli = (f"no thread {scope.thread!r} in tenant {scope.tenant!r}: check "
                             "--thread (`steward threads list --as ...`) and --db.")
                raise error
        if scope.workflow is not None:
            rows = (yield Stmt(self.sql.workflows(), (scope.tenant,))).rows
            known = sorted(str(r[0]) for r in rows)
            if scope.workflow not in known:
                names = ", ".join(known) or "none yet"
                error = ConfigError(f"no workflow {scope.workflow!r} in the trail of tenant "
                                    f"{scope.tenant!r} (its workflows: {names}).")
                error.cli = (f"no workflow {scope.workflow!r} in the trail of tenant "
                             f"{scope.tenant!r}: check --workflow (its workflows: {names}).")
                raise error

    def _approvals_op(self, scope: Scope) -> Op[dict[str, list[ApprovalRecord]]]:
        cte, params = self.sql.scope(scope)
        requests, votes = yield (
            Stmt(f"{cte} SELECT request_id, thread_id, action, required_roles, requested_by, "
                 "status, created_at, decided_at FROM steward_approvals WHERE thread_id IN "
                 "(SELECT thread_id FROM scope) ORDER BY created_at, request_id", params),
            Stmt(f"{cte} SELECT v.request_id, v.voter, v.role, v.decision, v.comment, v.at "
                 "FROM steward_votes v WHERE v.thread_id IN (SELECT thread_id FROM scope) "
                 "ORDER BY v.at, v.voter", params),
        )
        by_request: dict[str, list[VoteRecord]] = defaultdict(list)
        for rid, voter, role, decision, comment, at in votes.rows:
            by_request[rid].append(VoteRecord(voter, role, decision, comment, float(at)))
        out: dict[str, list[ApprovalRecord]] = defaultdict(list)
        for rid, tid, action, roles, by, status, created, decided in requests.rows:
            out[tid].append(ApprovalRecord(
                rid, str(action), tuple(str(r) for r in load_json(roles) or ()), by,
                str(status), float(created), _float(decided), tuple(by_request[rid])))
        return dict(out)

    def _figures_op(self, scope: Scope, timelines: bool) -> Op[_Figures]:
        threads = yield from threads_op(self.threads, self.sql, scope)
        if not threads:
            yield from self._unknown_op(scope)
        by_id = {t.thread_id: t for t in threads}
        recovery = yield from recovery_op(self.sql, scope, by_id)
        governance = yield from governance_op(self.sql, scope)
        effects = yield from effects_op(self.sql, scope)
        efficiency = yield from efficiency_op(self.sql, scope, threads)
        approvals = (yield from self._approvals_op(scope)) if timelines and threads else {}
        return _Figures(threads, recovery, governance, effects, efficiency, approvals)

    def _chains_op(self, chains: Chains, ids: Sequence[str], scan: bool,
                   tell: dict[str, list[Any]] | None) -> Op[None]:
        found = yield from self.audit.chains_op(ids)
        for tid in ids:
            events, head, error = found[tid]
            if not events and error is None and not scan:
                continue  # a tenant chain never written: nothing to verify
            chains.check(self.audit, tid, events, head, error, scan=scan)
            if tell is not None and scan:
                tell[tid] = events

    def _batches(self, scope: Scope, figures: _Figures) -> list[tuple[list[str], bool]]:
        ids = [t.thread_id for t in figures.threads]
        out = [(ids[i:i + BATCH], True) for i in range(0, len(ids), BATCH)]
        if ids and scope.thread is None and scope.workflow is None:  # the tenant's own chains
            out.append(([f"memory:{scope.tenant}", access_chain(scope.tenant)], False))
        return out

    def _scorecard(self, scope: Scope, figures: _Figures, chains: Chains,
                   events: dict[str, list[Any]] | None) -> Scorecard:
        told: dict[str, Timeline] = {}
        if events is not None:
            refusals: dict[str, list[Refusal]] = defaultdict(list)
            for refusal in figures.governance.cross_tenant:
                refusals[refusal.thread_id].append(refusal)
            told = {tid: timeline(tid, found, figures.approvals.get(tid, ()), refusals[tid])
                    for tid, found in events.items()}
        return Scorecard(scope, completion(figures.threads), figures.recovery,
                         figures.governance, completeness(figures.effects, chains),
                         figures.efficiency, tuple(figures.threads), told)

    def build(self, scope: Scope, *, timelines: bool = False) -> Scorecard:
        figures = self.driver.run(self._figures_op(scope, timelines), write=False)
        chains = Chains()
        events: dict[str, list[Any]] | None = {} if timelines else None
        for ids, scan in self._batches(scope, figures):
            self.driver.run(self._chains_op(chains, ids, scan, events), write=False)
        return self._scorecard(scope, figures, chains, events)

    async def abuild(self, scope: Scope, *, timelines: bool = False) -> Scorecard:
        figures = await self.driver.arun(self._figures_op(scope, timelines), write=False)
        chains = Chains()
        events: dict[str, list[Any]] | None = {} if timelines else None
        for ids, scan in self._batches(scope, figures):
            await self.driver.arun(self._chains_op(chains, ids, scan, events), write=False)
        return self._scorecard(scope, figures, chains, events)
