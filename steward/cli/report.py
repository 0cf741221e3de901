"""``steward report``: the scorecard of a tenant's workflows, read from its audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.audit.export import write_whole
from steward.cli.options import (
    DEFAULT_DB,
    DEFAULT_ROLES,
    AsOption,
    DbOption,
    HtmlOption,
    JsonOption,
    RolesOption,
    SinceOption,
    UntilOption,
    WorkflowOption,
    acting_as,
    console,
    open_runtime,
    print_data,
)
from steward.errors import ConfigError
from steward.report import render_html, render_text

__all__ = ["check_page", "report", "write_page"]


def check_page(path: Path, suggest: str = "report.html") -> None:
    """Refuse an --html path that cannot name the page's file (a directory, a directory that is
    not there) before anything is run or read, rather than after (``suggest``: a file name
    to offer)."""
    if path.is_dir():
        wrong = f"{path} is a directory: name a file, e.g. --html {path / suggest}."
    elif not path.parent.is_dir():
        wrong = f"there is no directory {path.parent}: create it first."
    else:
        return
    raise ConfigError(f"the page's path {str(path)!r} names no file in an existing directory: "
                      f"{wrong}",
                      cli=f"--html {path} names no file in an existing directory: {wrong}")


def write_page(path: str | Path, page: str) -> None:
    """Write ``page`` to ``path`` whole or not at all (``write_whole``: a file beside it, renamed
    at the end), after ``check_page``."""
    check_page(Path(path))
    write_whole(path, lambda out: out.write(page), what="the scorecard's page", flag="--html")


def report(who: AsOption, workflow: WorkflowOption = None,
           thread: Annotated[str | None, typer.Option(
               "--thread", help="Only this thread.", show_default=False)] = None,
           since: SinceOption = None, until: UntilOption = None, html: HtmlOption = None,
           db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
           as_json: JsonOption = False) -> None:
    """The scorecard of the principal's tenant: completion, recovery, governance, audit
    completeness, efficiency and cost, from the audit trail of its threads (started in
    --since/--until; of --workflow or --thread). Needs a role granted read on others'
    threads (by default: auditor)."""
    if html is not None:
        check_page(Path(html))
    with open_runtime(db, roles) as rt:
        card = rt.report(acting_as(who), workflow=workflow, thread=thread, since=since,
                         until=until, timelines=html is not None)
    if html is not None:
        write_page(html, render_html(card))
    if as_json:
        print_data(card.to_dict(), True)
        return
    render_text(card, console)
    if html is not None:
        console.print(f"wrote the scorecard's page to {html}", soft_wrap=True)
