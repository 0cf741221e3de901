"""``steward eval``: the example workflows run under injected faults, crashes and adversarial
requests on a fresh database; prints the scorecard of that run and the guarantees it checked.

Exit codes: 0 every guarantee held; 1 a guarantee broke (each printed with its thread); 2 the
evaluation could not run (bad options, a database that is not fresh or not reachable).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from steward.cli.options import HtmlOption, JsonOption, console, print_data
from steward.cli.report import check_page, write_page
from steward.errors import StewardError
from steward.evaluation import SABOTAGE, EvalOptions, evaluate, render
from steward.evaluation.world import EVAL_WORKFLOWS
from steward.report import render_html

__all__ = ["eval_command"]

_DEFAULTS = EvalOptions()


def eval_command(
        runs: Annotated[int, typer.Option(
            "--runs", help="Runs of each workflow (each a new thread).")] = _DEFAULTS.runs,
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Seed of the cases, faults, crash points and adversarial choices "
            "(default: drawn, and printed): the same seed, the same counts.",
            show_default=False)] = None,
        fault_rate: Annotated[float, typer.Option(
            "--fault-rate", help="Share of calls to the systems of record that "
            "fail: half transient errors, half timeouts.")] = _DEFAULTS.fault_rate,
        crashes: Annotated[int, typer.Option(
            "--crashes", help="Steps played in a process killed (SIGKILL) at a random "
            "point, then recovered.")] = _DEFAULTS.crashes,
        outage: Annotated[int, typer.Option(
            "--outage", help="Refund runs during which the payment provider is down.")
        ] = _DEFAULTS.outage,
        workflows: Annotated[str, typer.Option(
            "--workflows", help="Which workflows to run, comma-separated.")
        ] = ",".join(EVAL_WORKFLOWS),
        db: Annotated[str | None, typer.Option(
            "--db", help="A fresh database to run in (sqlite:///..., postgresql://...); "
            "default: a temporary SQLite file, removed afterwards unless a guarantee broke.",
            show_default=False)] = None,
        html: HtmlOption = None, as_json: JsonOption = False,
        sabotage: Annotated[str | None, typer.Option(
            "--sabotage", hidden=True, help=f"Test only: break a guarantee ({', '.join(SABOTAGE)})"
            " to show that the evaluation catches it.")] = None) -> None:
    """Run the example workflows (refund, access, close, research) --runs times each on a
    fresh database under injected faults -- transient errors and timeouts at --fault-rate,
    --crashes processes killed mid-step, the payment provider down for --outage refund runs --
    and adversarial requests (over-limit refunds and grants, self-approvals, another tenant's
    reads and votes, malformed resumes, prompt-injected refunds); print the scorecard of that
    run and the guarantees checked against the systems of record. Exit code 1 when one broke, 2
    when it cannot run."""
    options = EvalOptions(runs=runs, seed=seed, fault_rate=fault_rate, crashes=crashes,
                          outage=outage, workflows=tuple(n.strip() for n in workflows.split(",")
                                                         if n.strip()),
                          db=db, timelines=html is not None, sabotage=sabotage)
    err = Console(stderr=True, markup=False, highlight=False)
    progress = (lambda line: err.print(line, style="dim")) if sys.stderr.isatty() else None
    try:
        if html is not None:
            check_page(Path(html), "eval.html")  # before the evaluation runs, not after
        result = evaluate(options, progress=progress)
        if html is not None:
            write_page(html, render_html(result.scorecard))
    except StewardError as exc:
        err.print(f"error: {exc.cli or exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print_data(result.to_dict(), True)
    else:
        render(result, console)
        if html is not None:
            console.print(f"wrote the scorecard's page to {html}", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
