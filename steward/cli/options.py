"""The options every ``steward`` command shares, and the helpers they use, defined once.

Every command opens the database named by ``--db`` (or ``$STEWARD_DB``; default the embedded
SQLite file) and acts as the principal named by ``--as`` (or ``$STEWARD_AS``), so the thread
access rule applies exactly as it does in code; ``--thread-roles`` says which roles reach other
members' threads. ``--json`` prints machine-readable output. A principal is written
``TENANT/ID[:ROLE,ROLE...]`` (e.g. ``acme/bob@acme.test:manager``) or as JSON
(``{"id": ..., "tenant": ..., "roles": [...]}``). Commands that read (or vote on what is there)
refuse a SQLite path with no database rather than create an empty one. Output is printed
without rich markup, so brackets in data and messages stay as they are.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import steward
from steward.errors import ConfigError
from steward.examples import THREAD_ROLES
from steward.identity import Principal, parse_principal, parse_thread_roles
from steward.storage.url import parse_url

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_ROLES",
    "AsOption",
    "DbOption",
    "HtmlOption",
    "JsonOption",
    "LimitOption",
    "RolesOption",
    "SinceOption",
    "UntilOption",
    "WorkflowOption",
    "acting_as",
    "console",
    "existing",
    "id_table",
    "open_runtime",
    "print_data",
    "when",
]

console = Console(markup=False)  # data and messages may hold [brackets]: print them as they are

DEFAULT_DB = "sqlite:///steward-demo.db"
DEFAULT_ROLES = THREAD_ROLES  # the roles the example workflows' policies name

DbOption = Annotated[str, typer.Option("--db", envvar="STEWARD_DB",
                                       help="Database URL (sqlite:///..., postgresql://...).")]
AsOption = Annotated[str, typer.Option("--as", envvar="STEWARD_AS",
                                       help="Act as TENANT/ID[:ROLE,...] or a JSON principal.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RolesOption = Annotated[str, typer.Option(
    "--thread-roles", envvar="STEWARD_THREAD_ROLES",
    help="Which roles reach others' threads: ROLE=read|write|admin,...")]
LimitOption = Annotated[int, typer.Option("--limit", help="Show at most this many, the latest.")]
# Reports (``steward report``): which threads, and an HTML page beside the terminal's table.
WorkflowOption = Annotated[str | None, typer.Option(
    "--workflow", help="Only threads of this workflow (as their runs name it: refund, ...).")]
_WHEN = ("an ISO 8601 date or time (2026-11-01, 2026-11-01T09:30Z; UTC unless it says) or a "
         "duration back from now (90m, 12h, 7d, 2w)")
SinceOption = Annotated[str | None, typer.Option(
    "--since", help=f"Only threads started at or after this: {_WHEN}.", show_default=False)]
UntilOption = Annotated[str | None, typer.Option(
    "--until", help=f"Only threads started before this: {_WHEN}.", show_default=False)]
HtmlOption = Annotated[str | None, typer.Option(
    "--html", help="Also write the scorecard to FILE as one self-contained HTML page (charts, "
    "each thread's timeline).", metavar="FILE", show_default=False)]


def acting_as(spec: str) -> Principal:
    """The principal ``--as`` names."""
    return parse_principal(spec, source="--as")


def existing(db: str) -> str:
    """``db``, once it is known not to name a missing SQLite file: a command that reads must
    not create an empty database where a path was mistyped. PostgreSQL URLs are not checked
    here (a missing database fails to connect)."""
    url = parse_url(db)
    if url.backend == "sqlite" and url.target != ":memory:" and not Path(url.target).exists():
        raise ConfigError(f"no Steward database at {os.path.abspath(url.target)}: check --db "
                          "(or $STEWARD_DB); `steward run` and `steward demo` create one.")
    return db


@contextmanager
def open_runtime(db: str, roles: str | None = None, policy: Any = None, *,
                 create: bool = False) -> Iterator[steward.Runtime]:
    """A runtime on the database ``--db`` names, with the thread roles ``--thread-roles``
    grants (none when ``roles`` is None). Unless ``create``, a missing SQLite file is refused
    (see :func:`existing`)."""
    grants = parse_thread_roles(roles, source="--thread-roles") if roles is not None else None
    with steward.open(db if create else existing(db), thread_roles=grants, policy=policy) as rt:
        yield rt


def print_data(data: Any, as_json: bool, table: Table | None = None) -> None:
    """``data`` as indented JSON with ``--json``; otherwise ``table`` (or ``data``) for people."""
    if as_json:
        print(json.dumps(data, indent=2, default=str, sort_keys=True))
    elif table is not None:
        console.print(table)
    else:
        console.print(data)


def id_table(first: tuple[str, list[str]], *others: str) -> Table:
    """A table whose first column (ids a later command takes) is never cut or folded."""
    name, values = first
    table = Table()
    table.add_column(name, no_wrap=True, min_width=max(map(len, [name, *values])))
    for other in others:
        table.add_column(other)
    return table


def when(ts: float | None) -> str:
    """A stored time as local ``YYYY-mm-dd HH:MM:SS``; ``-`` when there is none."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"
