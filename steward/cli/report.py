"""``steward report``: the scorecard of a tenant's workflows, read from its audit trail."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

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
from steward.report import parse_when, render_html, render_text

__all__ = ["report", "write_page"]


def write_page(path: str, page: str) -> None:
    """Write ``page`` to ``path`` whole or not at all (a file beside it, renamed at the end)."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--html {path} is a directory: name a file, e.g. --html "
                          f"{target / 'report.html'}.")
    if not target.parent.is_dir():
        raise ConfigError(f"--html {path}: no directory {target.parent}; create it first.")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
    start = parse_when(since, name="--since")
    end = parse_when(until, name="--until")
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"--since {since} is not before --until {until}: the period would "
                          "hold no thread.")
    with open_runtime(db, roles) as rt:
        card = rt.report(acting_as(who), workflow=workflow, thread=thread, since=start,
                         until=end, timelines=html is not None)
    if html is not None:
        write_page(html, render_html(card))
    if as_json:
        print_data(card.to_dict(), True)
        return
    render_text(card, console)
    if html is not None:
        console.print(f"wrote the scorecard's page to {html}", soft_wrap=True)
