"""The ``steward`` command: the typer app, assembled from one module per command group.

- ``demo``: the refund story across three processes (and the hidden ``demo-resume``);
- ``run``: start an example workflow; ``threads``: list, show, history;
- ``approvals``: list, approve, reject; ``audit``: tail, export, verify;
- ``retention``: ``sweep`` and ``erase``; ``token``: a bearer token for the LangGraph server;
- ``worker``: execute submitted runs and keep the periodic duties (``steward.workers``);
- ``report``: the scorecard of a tenant's workflows (``steward.report``), as a table, JSON or
  an HTML page;
- ``eval``: the example workflows run under injected faults, crashes and adversarial requests
  on a fresh database, their scorecard, and the guarantees checked (``steward.evaluation``;
  its exit code 1 says a guarantee broke, 2 that it could not run);
- ``options``: the options and helpers they all share (``--db``, ``--as``, ``--thread-roles``,
  ``--json``).

Exit codes: 0 success; 1 a Steward error (printed as one line, no traceback); 2 bad usage.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from steward.cli import approvals, audit, threads
from steward.cli.demo import demo, demo_resume
from steward.cli.eval import eval_command
from steward.cli.report import report
from steward.cli.retention import erase, sweep
from steward.cli.run import resume, run
from steward.cli.token import token
from steward.cli.worker import worker
from steward.errors import StewardError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Steward: a stateful runtime for LangGraph agents.")
app.command("demo")(demo)
app.command("demo-resume", hidden=True)(demo_resume)
app.command("run")(run)
app.command("resume")(resume)
app.command("sweep")(sweep)
app.command("erase")(erase)
app.command("token")(token)
app.command("worker")(worker)
app.command("report")(report)
app.command("eval")(eval_command)
app.add_typer(threads.app, name="threads")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")


@app.callback()
def _root() -> None:
    """Steward: a stateful runtime for LangGraph agents."""


def main() -> None:
    """Entry point: Steward errors become one line on stderr and exit code 1."""
    try:
        app(standalone_mode=True)
    except StewardError as exc:
        # The message as it is (no rich markup: "[postgres]" stays), on one line; worded for
        # the command line when the error carries such a wording.
        message = exc.cli or str(exc)
        Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False,
                                   soft_wrap=True)
        raise SystemExit(1) from None
