"""``evaluate(options)``: the example workflows run N times each under injected faults, crashes
and adversarial requests, on a fresh database, then the scorecard and the guarantees.

In order:

1. a working directory for the systems of record (``$STEWARD_DEMO_LEDGER`` and
   ``$STEWARD_DEMO_RECORDS`` point there while the evaluation runs) and, unless ``db`` names
   one, the SQLite database; a database whose tenant ``acme`` holds threads already is refused;
2. the cases (``steward.evaluation.cases``), their business objects added to the systems of
   record; ``crashes`` of their acting steps drawn to be played in a child process killed at a
   drawn point, spread over the workflows; a stretch of ``outage`` refund runs during which
   the payment provider refuses every call;
3. round after round (one run of each workflow per round), each case's steps, each under its
   own fault plan (the seed, the thread and the step name its draws); a crashed step's thread
   is then recovered as a user would -- ``rt.resume`` as its owner, or the vote sent again if
   the killed run never recorded it, or the input run again if nothing was written -- and a
   run that failed on a fault it could not get over waits for the provider to be back, then
   is resumed the same way;
4. the scorecard of the tenant's trail (``rt.report``, read by the auditor), then every
   guarantee checked against the systems of record (``steward.evaluation.checks``).

The same seed plays the same cases, draws the same faults and crash points, and counts the
same in the scorecard: only durations differ.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import steward
from steward.errors import ConfigError
from steward.evaluation.cases import Case, plan_cases
from steward.evaluation.checks import Checker
from steward.evaluation.crash import spawn
from steward.evaluation.play import play
from steward.evaluation.result import Broken, Crash, EvalResult
from steward.evaluation.world import CAST, EVAL_WORKFLOWS, TENANT, build_graph, open_runtime
from steward.examples import faults
from steward.examples.refund import pay_refund
from steward.report import Scorecard
from steward.storage.ops import Op, Stmt
from steward.storage.url import mask

__all__ = ["SABOTAGE", "EvalOptions", "evaluate"]

# Test-only: break a guarantee on purpose, to show that the evaluation catches it.
SABOTAGE = ("pay-twice", "tamper-audit")
RECOVERY_PASSES = 3  # times a thread that keeps failing on faults is resumed at the end


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate: ``runs`` of each of ``workflows``; ``fault_rate`` of calls to the
    systems of record failing (half errors, half timeouts); ``crashes`` steps killed; the
    payment provider down for ``outage`` refund runs; ``db`` (default: a temporary SQLite
    file); ``seed`` (default: drawn, and reported); ``tool_timeout``: the agent workflows'
    per-call timeout; ``timelines``: each thread's timeline in the scorecard (for its page)."""

    runs: int = 20
    seed: int | None = None
    fault_rate: float = 0.1
    crashes: int = 8
    outage: int = 3
    workflows: tuple[str, ...] = EVAL_WORKFLOWS
    db: str | None = None
    tool_timeout: float = 1.0
    timelines: bool = False
    sabotage: str | None = None

    def checked(self) -> EvalOptions:
        """These options, or a ConfigError naming the bad one and its value (its ``cli``
        wording names the flag)."""
        if self.runs < 1:
            raise _bad("runs", "--runs", f"is how many times each workflow runs: at least 1, "
                                         f"got {self.runs}.")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise _bad("fault_rate", "--fault-rate", f"is a share of calls, between 0 and 1, "
                                                     f"got {self.fault_rate:g}.")
        if self.crashes < 0:
            raise _bad("crashes", "--crashes", f"counts steps killed mid-run: 0 or more, got "
                                               f"{self.crashes}.")
        if self.outage < 0:
            raise _bad("outage", "--outage", f"counts refund runs with the payment provider "
                                             f"down: 0 or more, got {self.outage}.")
        given = ",".join(self.workflows)
        unknown = [w for w in self.workflows if w not in EVAL_WORKFLOWS]
        twice = sorted({w for w in self.workflows if self.workflows.count(w) > 1})
        wrong = (f"name no workflow {', '.join(map(repr, unknown))}" if unknown else
                 f"name {', '.join(map(repr, twice))} twice" if twice else
                 "name none" if not self.workflows else None)
        if wrong is not None:
            raise _bad("workflows", "--workflows",
                       f"{wrong} (got {given!r}): name each of {', '.join(EVAL_WORKFLOWS)} at "
                       "most once.", f"{wrong} (got {given!r}): name each of "
                       f"{', '.join(EVAL_WORKFLOWS)} at most once, separated by commas.")
        if self.tool_timeout <= 0:
            raise ConfigError(f"tool_timeout is each agent tool call's timeout in seconds: "
                              f"above 0, got {self.tool_timeout:g}.")
        if self.sabotage is not None and self.sabotage not in SABOTAGE:
            raise _bad("sabotage", "--sabotage", f"is one of {', '.join(SABOTAGE)}, got "
                                                 f"{self.sabotage!r}.")
        if self.sabotage == "pay-twice" and "refund" not in self.workflows:
            raise _bad("sabotage", "--sabotage", f"pay-twice needs the refund workflow: add "
                       f"refund to workflows (got {given!r}).", "pay-twice needs the refund "
                       f"workflow: add refund to --workflows (got {given!r}).")
        return self


def _bad(name: str, flag: str, says: str, cli_says: str | None = None) -> ConfigError:
    """A ConfigError about the option ``name``: ``name`` and what it ``says``; its ``cli``
    wording the same (or ``cli_says``) after the option's ``flag``."""
    error = ConfigError(f"{name} {says}")
    error.cli = f"{flag} {cli_says or says}"
    return error


@dataclass
class _Thread:
    case: Case
    results: dict[int, tuple[str, str]] = field(default_factory=dict)  # step -> outcome
    next: int = 0  # the next step to play
    parked: int | None = None  # the step whose run failed on a fault: resume the thread
    crash: Crash | None = None


@contextlib.contextmanager
def _records(workdir: str) -> Iterator[None]:
    """The systems of record in ``workdir`` while the evaluation runs (children inherit it)."""
    saved = {k: os.environ.get(k) for k in ("STEWARD_DEMO_LEDGER", "STEWARD_DEMO_RECORDS")}
    os.environ["STEWARD_DEMO_LEDGER"] = os.path.join(workdir, "payments.db")
    os.environ["STEWARD_DEMO_RECORDS"] = os.path.join(workdir, "records.db")
    previous = faults.install(None)
    try:
        yield
    finally:
        faults.install(previous)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Evaluation:
    def __init__(self, rt: steward.Runtime, options: EvalOptions, seed: int, db: str,
                 progress: Callable[[str], None] | None) -> None:
        self.rt, self.o, self.seed, self.db = rt, options, seed, db
        self.progress = progress or (lambda _: None)
        self.graphs = {name: build_graph(rt, name, options.tool_timeout)
                       for name in ("refund", "access", "close", "research", "injection")}
        self.injected: Counter[str] = Counter()
        self.by_op: Counter[str] = Counter()
        self.recovered = 0
        self.threads: dict[str, _Thread] = {}

    # -- faults --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _faults(self, t: _Thread, name: str, down: tuple[str, ...]) -> Iterator[None]:
        plan = faults.FaultPlan(f"{self.seed}/{t.case.thread_id}/{name}", rate=self.o.fault_rate,
                                hang=t.case.graph != "refund", down=down)
        faults.install(plan)
        try:
            yield
        finally:
            plan.release()
            faults.install(None)
            self.injected.update(plan.injected)
            self.by_op.update(plan.by_op)

    def _crash_plan(self, rounds: list[list[Case]]) -> dict[tuple[str, int], str]:
        """Which acting steps a crash strikes, and where: spread over the workflows (not
        where the provider is down: the step would fail before it reaches the point)."""
        rng = random.Random(f"{self.seed}/crashes")
        by_flow: dict[str, list[tuple[str, int, tuple[str, ...]]]] = {}
        outage = self._outage()
        for r, rnd in enumerate(rounds):
            for case in rnd:
                if r in outage and case.graph == "refund":
                    continue
                for i, step in enumerate(case.steps):
                    if step.crash_points:
                        by_flow.setdefault(case.workflow, []).append(
                            (case.thread_id, i, step.crash_points))
        for steps in by_flow.values():
            rng.shuffle(steps)
        chosen: dict[tuple[str, int], str] = {}
        flows = [w for w in self.o.workflows if by_flow.get(w)]
        while len(chosen) < self.o.crashes and any(by_flow.get(w) for w in flows):
            for w in flows:
                if by_flow[w] and len(chosen) < self.o.crashes:
                    tid, i, points = by_flow[w].pop()
                    if not any(k[0] == tid for k in chosen):  # one crash per thread
                        chosen[(tid, i)] = rng.choice(points)
        return chosen

    def _outage(self) -> range:
        """The rounds during which the payment provider is down."""
        if "refund" not in self.o.workflows or not self.o.outage:
            return range(0)
        length = min(self.o.outage, self.o.runs)
        start = random.Random(f"{self.seed}/outage").randrange(self.o.runs - length + 1)
        return range(start, start + length)

    # -- playing and recovering ----------------------------------------------------------------

    def _play(self, t: _Thread, i: int, down: tuple[str, ...],
              crash: str | None) -> tuple[str, str]:
        case, step = t.case, t.case.steps[i]
        graph = self.graphs[case.graph]
        if crash is None:
            with self._faults(t, f"step{i}", down):
                return play(self.rt, graph, case.thread_id, step.who, step.action, step.payload)
        child = spawn({"db": self.db, "graph": case.graph, "thread": case.thread_id,
                       "who": step.who, "action": step.action, "payload": step.payload,
                       "point": crash, "down": list(down),
                       "tool_timeout": self.o.tool_timeout})
        t.crash = Crash(case.thread_id, i, crash, child.killed, False)
        if child.error is not None:
            return "error", child.error
        if not child.killed:
            return str(child.outcome), child.detail
        self.progress(f"  {case.thread_id}: killed at {crash}; recovering")
        return self._recover(t, i, down)

    def _recover(self, t: _Thread, i: int, down: tuple[str, ...]) -> tuple[str, str]:
        """Take the thread up after its step's run died or failed, as a user would."""
        case, step = t.case, t.case.steps[i]
        owner = CAST[case.owner]
        graph = self.graphs[case.graph]
        with self._faults(t, f"recover{i}.{self.recovered}", down):
            info = self.rt.checkpointer.thread_info(case.thread_id, owner)
            latest = self.rt.checkpointer.get_tuple(
                {"configurable": {"thread_id": case.thread_id, "principal": owner}})
            if info is None or latest is None:  # nothing was written: run it again
                return play(self.rt, graph, case.thread_id, step.who, step.action, step.payload)
            if info["status"] != "interrupted":  # stalled, or its last run failed
                return play(self.rt, graph, case.thread_id, case.owner, "resume", None)
            status = {r["id"]: r["status"] for r in self.rt.approvals.history(case.thread_id,
                                                                               owner)}
            if not any(status.get(w.get("request")) == "pending" for w in info["waiting_on"]):
                # It shows the interrupt of a request decided before its run died: go on.
                return play(self.rt, graph, case.thread_id, case.owner, "continue", None)
            if step.action == "vote" and any(p["thread_id"] == case.thread_id for p in
                                             self.rt.approvals.pending(CAST[step.who])):
                return play(self.rt, graph, case.thread_id, step.who, "vote", step.payload)
            return "ok", "waiting"  # the vote counted; the next one is another step's

    def _advance(self, t: _Thread, down: tuple[str, ...],
                 crashes: dict[tuple[str, int], str]) -> None:
        steps = t.case.steps
        while t.parked is None and t.next < len(steps):
            i = t.next
            t.next += 1
            outcome, detail = self._play(t, i, down, crashes.get((t.case.thread_id, i)))
            t.results[i] = (outcome, detail)
            if outcome == "fault":
                t.parked = i
            elif outcome == "error" or (outcome == "ok" and detail not in ("waiting", "read")
                                        and t.next < len(steps)):
                t.next = len(steps)  # it cannot go on: the checks say what it left

    def _unpark(self, down: tuple[str, ...], crashes: dict[tuple[str, int], str]) -> None:
        for t in self.threads.values():
            if t.parked is None:
                continue
            i = t.parked
            outcome, detail = self._recover(t, i, down)
            if outcome == "fault":
                continue
            self.recovered += 1
            t.parked = None
            t.results[i] = (outcome, detail)
            self._advance(t, down, crashes)

    # -- the whole evaluation ------------------------------------------------------------------

    def run(self) -> tuple[list[Case], dict[str, str], list[str]]:
        rounds = plan_cases(self.seed, self.o.runs, self.o.workflows)
        self.threads = {c.thread_id: _Thread(c) for rnd in rounds for c in rnd}
        crashes = self._crash_plan(rounds)
        outage = self._outage()
        for r, rnd in enumerate(rounds):
            down = ("payments",) if r in outage else ()
            self.progress(f"round {r + 1}/{len(rounds)}" + (" (payment provider down)"
                                                              if down else ""))
            for case in rnd:
                self._advance(self.threads[case.thread_id], down, crashes)
            if not down:
                self._unpark((), crashes)
        for _ in range(RECOVERY_PASSES):
            self._unpark((), crashes)
        notes: list[str] = []
        if self.o.sabotage:
            notes.append(self._sabotage(self.o.sabotage))
        ends = {tid: self._end(t) for tid, t in self.threads.items()}
        for tid, t in self.threads.items():
            if t.crash is not None:
                t.crash = Crash(t.crash.thread_id, t.crash.step, t.crash.point, t.crash.killed,
                                ends[tid] == t.case.expect)
        return [t.case for t in self.threads.values()], ends, notes

    def _end(self, t: _Thread) -> str:
        """How the thread stands: refunded, done, denied, waiting, failed, or stalled."""
        case = t.case
        if t.parked is not None:
            return "stalled"
        if any(o == "denied" for o, _ in t.results.values()):
            return "denied"  # (a refund's thread keeps the interrupt its rejection answered)
        state = self.graphs[case.graph].get_state(self.rt.config(case.thread_id,
                                                                  CAST[case.owner]))
        if state.interrupts:
            return "waiting"
        values = state.values or {}
        if values.get("status") == "refunded":
            return "refunded"
        status = str((values.get("outcome") or {}).get("status") or "")
        return status if status in ("done", "refunded") else ("failed" if status else "stalled")

    def _sabotage(self, kind: str) -> str:
        """Break a guarantee behind Steward's back (test-only: the evaluation must catch it)."""
        if kind == "pay-twice":
            refunded = [t for t in self.threads.values() if t.case.graph == "refund"
                        and self._end(t) == "refunded"]
            if not refunded:
                raise _bad("sabotage", "--sabotage", "pay-twice found no refunded thread to "
                           "pay twice: give more runs.", "pay-twice found no refunded thread to "
                           "pay twice: give more --runs.")
            t = refunded[0]
            # The provider's own code, called past the effect wrapper (no run, no key of
            # Steward's): the payment goes out as a real one would, but nothing records it.
            txn = inspect.unwrap(pay_refund)(t.case.key, t.case.facts["amount"],
                                             idempotency_key=f"sabotage-{t.case.thread_id}")
            return (f"sabotage: order {t.case.key} of {t.case.thread_id} paid a second time "
                    f"({txn})")
        t = next(iter(self.threads.values()))

        def tamper() -> Op[None]:
            yield Stmt("UPDATE steward_audit SET principal_id = ? WHERE thread_id = ? AND seq = 2",
                       (CAST["mallory"].id, t.case.thread_id))

        self.rt.audit.driver.run(tamper(), write=True)
        return f"sabotage: event 2 of {t.case.thread_id}'s audit chain edited"


def _fresh(rt: steward.Runtime, db: str) -> None:
    if rt.checkpointer.list_threads(CAST["carol"], limit=1):
        raise ConfigError(f"--db {mask(db)} already holds threads of tenant {TENANT!r}: steward "
                          "eval needs a fresh database (create an empty one, or leave --db out "
                          "for a temporary SQLite file).")


def evaluate(options: EvalOptions | None = None, *,
             progress: Callable[[str], None] | None = None) -> EvalResult:
    """Run an evaluation (see the module) and return what it found; ``progress`` is told what
    it is doing, a line at a time."""
    o = (options or EvalOptions()).checked()
    seed = o.seed if o.seed is not None else random.SystemRandom().randrange(1, 100_000)
    started = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="steward-eval-")
    db = o.db or f"sqlite:///{os.path.join(workdir, 'steward.db')}"
    keep = False
    try:
        with _records(workdir), open_runtime(db) as rt:
            _fresh(rt, db)
            ev = _Evaluation(rt, o, seed, db, progress)
            cases, ends, notes = ev.run()
            if progress is not None:
                progress("the scorecard and the guarantees")
            card = rt.report(CAST["carol"], timelines=o.timelines)
            checker = Checker(rt)
            for case in cases:
                t = ev.threads[case.thread_id]
                checker.thread(case, ends[case.thread_id],
                               [(i, *r) for i, r in sorted(t.results.items())])
                for i, (outcome, detail) in sorted(t.results.items()):
                    checker.checked["error"] += 1
                    if outcome == "error":
                        checker.broken.append(_error(case, i, detail))
            checker.trail(card)
            keep = bool(checker.broken)
            result = _result(o, seed, db, started, ev, cases, ends, notes, checker, card,
                             workdir if keep else None)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _error(case: Case, i: int, detail: str) -> Broken:
    return Broken("error", case.thread_id, f"step {i + 1} ({case.steps[i].action} by "
                                           f"{case.steps[i].who}) raised {detail}")


def _result(o: EvalOptions, seed: int, db: str, started: float, ev: _Evaluation,
            cases: list[Case], ends: dict[str, str], notes: list[str], checker: Checker,
            card: Scorecard, kept: str | None) -> EvalResult:
    adversarial: dict[str, dict[str, int]] = {}
    for case in cases:
        for i, step in enumerate(case.steps):
            if step.adversarial and i in ev.threads[case.thread_id].results:
                seen = adversarial.setdefault(step.adversarial, {"made": 0, "refused": 0})
                seen["made"] += 1
                outcome = ev.threads[case.thread_id].results[i][0]
                seen["refused"] += outcome in ("refused", "denied")
    by_end: dict[str, dict[str, int]] = {}
    for case in cases:
        row = by_end.setdefault(case.expect, {"threads": 0, "as_expected": 0})
        row["threads"] += 1
        row["as_expected"] += ends[case.thread_id] == case.expect
        if ends[case.thread_id] != case.expect:
            notes.append(f"{case.thread_id} ({case.workflow}, {case.kind}) ended "
                         f"{ends[case.thread_id]}, its case expects {case.expect}")
    refund_runs = ev._outage()
    outage = {"runs": (f"{refund_runs.start + 1}-{refund_runs.stop}" if refund_runs else None),
              "refused": ev.injected.get("down", 0)}
    options = {"runs": o.runs, "fault_rate": o.fault_rate, "crashes": o.crashes,
               "outage": len(refund_runs), "workflows": list(o.workflows),
               "tool_timeout": o.tool_timeout}
    played: dict[str, dict[str, int]] = {}
    for case in cases:
        kinds = played.setdefault(case.workflow, {})
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
    return EvalResult(
        seed=seed, options=options, seconds=time.perf_counter() - started,
        db=mask(db) if o.db else "a temporary SQLite database",
        threads=len(cases), cases=played,
        injected={k: ev.injected.get(k, 0) for k in ("error", "timeout", "down")},
        injected_by_op=dict(sorted(ev.by_op.items())),
        crashes=tuple(t.crash for t in ev.threads.values() if t.crash is not None),
        outage=outage, recovered_faults=ev.recovered, adversarial=adversarial, ends=by_end,
        checked=dict(checker.checked), broken=tuple(checker.broken), scorecard=card,
        kept=kept, notes=tuple(notes))
