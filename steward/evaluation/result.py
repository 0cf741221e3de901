"""What an evaluation did and found: :class:`EvalResult`, and how it is printed.

The printed form is the evaluation's header (seed, runs, faults asked for, database, time),
the scorecard of its trail (``steward.report.render_text``), then what was injected (faults by
kind, crashes and where they struck, the outage), the adversarial requests and how each was
met, and the guarantees: held, or broken with the thread that broke each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steward.evaluation.cases import ADVERSARIAL
from steward.report import Scorecard, render_text

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["GUARANTEES", "Broken", "Crash", "EvalResult", "render"]

# The guarantees an evaluation checks, in the order it prints them.
GUARANTEES = {
    "duplicated": "no effect happened twice",
    "missing": "every finished thread has its effects",
    "forbidden": "nothing the policy or its approvers refused happened",
    "chain": "every audit chain verifies",
    "error": "no run failed in a way Steward should have contained",
}


@dataclass(frozen=True)
class Broken:
    """A guarantee broken on a thread, and what shows it."""

    guarantee: str
    thread_id: str
    detail: str


@dataclass(frozen=True)
class Crash:
    """A step played in a process killed at ``point``; ``killed`` False: it ended before the
    point; ``recovered``: its thread went on (or ended as its case expects) afterwards."""

    thread_id: str
    step: int
    point: str
    killed: bool
    recovered: bool


@dataclass(frozen=True)
class EvalResult:
    """One evaluation (see the module). ``ok`` when no guarantee broke."""

    seed: int
    options: dict[str, Any]
    db: str
    seconds: float
    threads: int
    cases: dict[str, dict[str, int]]  # workflow -> case -> runs
    injected: dict[str, int]
    injected_by_op: dict[str, int]
    crashes: tuple[Crash, ...]
    outage: dict[str, Any]
    recovered_faults: int
    adversarial: dict[str, dict[str, int]]
    ends: dict[str, dict[str, int]]
    checked: dict[str, int]
    broken: tuple[Broken, ...]
    scorecard: Scorecard
    kept: str | None = None  # where the database and systems of record were kept
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.broken

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                               if f.name not in ("scorecard", "crashes", "broken")}
        out["crashes"] = [dataclasses.asdict(c) for c in self.crashes]
        out["broken"] = [dataclasses.asdict(b) for b in self.broken]
        out["ok"] = self.ok
        out["scorecard"] = self.scorecard.to_dict()
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"


def render(result: EvalResult, console: Console | None = None) -> None:
    """Print the evaluation (see the module) on ``console`` (default: stdout, no markup)."""
    from rich.console import Console
    from rich.table import Table

    out = console or Console(markup=False, highlight=False)
    o = result.options
    out.print(f"steward eval — seed {result.seed}: {o['runs']} runs each of "
              f"{', '.join(o['workflows'])} ({result.threads} threads); fault rate "
              f"{o['fault_rate']:g}, {o['crashes']} crashes, the payment provider down for "
              f"{o['outage']} refund runs; on {result.db}; {result.seconds:.1f} s", soft_wrap=True)
    render_text(result.scorecard, out)
    injected = Table(title="What was injected", title_justify="left")
    injected.add_column("fault")
    injected.add_column("count", justify="right")
    injected.add_column("what it is")
    i, outage = result.injected, result.outage
    injected.add_row("transient errors", str(i.get("error", 0)),
                     "a system of record refused a call before acting")
    injected.add_row("timeouts", str(i.get("timeout", 0)),
                     "a system acted, and its answer came too late or never")
    injected.add_row("calls refused while the payment provider was down", str(i.get("down", 0)),
                     f"refund runs {outage.get('runs') or '-'}")
    killed = [c for c in result.crashes if c.killed]
    missed = len(result.crashes) - len(killed)
    injected.add_row("processes killed (SIGKILL) mid-step", str(len(killed)),
                     ", ".join(f"{c.thread_id} at {c.point}" for c in killed) or "-")
    out.print(injected)
    by = result.scorecard.recovery.by_cause
    out.print(f"The scorecard counts {by.get('retry', 0)} calls or steps tried again within "
              f"their run, {by.get('error', 0)} runs that failed on a fault (the evaluation "
              f"resumed {result.recovered_faults} runs, as their owner would) and "
              f"{by.get('crash', 0)} runs that died after writing something; "
              f"{sum(c.recovered for c in killed)} of the {len(killed)} killed threads ended as "
              "their case expects" + (f"; {missed} more crashes came after their step ended"
                                      if missed else "") + ".", soft_wrap=True)
    adversarial = Table(title="Adversarial requests", title_justify="left")
    adversarial.add_column("request")
    adversarial.add_column("made", justify="right")
    adversarial.add_column("refused or denied", justify="right")
    for kind, text in ADVERSARIAL.items():
        seen = result.adversarial.get(kind)
        if seen:
            adversarial.add_row(text, str(seen["made"]), str(seen["refused"]))
    out.print(adversarial)
    guarantees = Table(title="Guarantees", title_justify="left")
    guarantees.add_column("guarantee")
    guarantees.add_column("checked", justify="right")
    guarantees.add_column("result")
    for name, text in GUARANTEES.items():
        broken = [b for b in result.broken if b.guarantee == name]
        guarantees.add_row(text, str(result.checked.get(name, 0)),
                           f"BROKEN ({len(broken)})" if broken else "held")
    out.print(guarantees)
    for note in result.notes:
        out.print(f"note: {note}", soft_wrap=True)
    for b in result.broken:
        out.print(f"BROKEN {b.guarantee}: thread {b.thread_id}: {b.detail}", soft_wrap=True)
    verdict = ("every guarantee held" if result.ok else
               f"{len(result.broken)} broken guarantee(s) on "
               f"{len({b.thread_id for b in result.broken})} thread(s)")
    out.print(f"steward eval: {verdict} (seed {result.seed}; reproduce with --seed "
              f"{result.seed})" + (f"; database and records kept in {result.kept}"
                                    if result.kept else ""), soft_wrap=True)
