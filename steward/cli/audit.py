"""``steward audit``: follow a thread's audit events, export them, verify their hash chains."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from steward.cli.options import (
    DEFAULT_DB,
    DEFAULT_ROLES,
    AsOption,
    DbOption,
    JsonOption,
    LimitOption,
    RolesOption,
    acting_as,
    console,
    open_runtime,
    when,
)
from steward.errors import ConfigError
from steward.storage.url import mask

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Audit trails: verify exports and threads.")


@app.command("verify")
def audit_verify(
    file: Annotated[str | None, typer.Option("--file", help="A JSON Lines export to check "
                                             "offline (rt.audit.export).")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="A thread to check in the "
                                               "database.")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Check audit hash chains: an export file (no database needed), or a thread's chain."""
    from steward.audit.export import verify_file

    if (file is None) == (thread is None):
        raise typer.BadParameter("give --file (an export) or --thread (with --db)")
    if file is not None:
        if not Path(file).is_file():
            raise ConfigError(f"no file {file!r}: give the path of an export written by "
                              "`steward audit export --out FILE`.")
        counts = verify_file(file)
        if not sum(counts.values()):
            raise ConfigError(f"{file} holds no audit events: nothing was verified. Export "
                              "again with `steward audit export --out FILE`.")
    else:
        assert thread is not None
        with open_runtime(db) as rt:
            counts = {thread: rt.audit.verify(thread)}
        if not counts[thread]:
            raise ConfigError(f"no audit events for thread {thread!r} in {mask(db)}: nothing "
                              "was verified. Check the id (`steward threads list --as ...`) "
                              "and --db.")
    for tid, n in counts.items():
        console.print(f"{tid}: {n} events, chain intact")
    console.print(Text.assemble(("verified", "green"), f" {sum(counts.values())} events in "
                                f"{len(counts)} threads"))


@app.command("tail")
def audit_tail(thread: str, who: AsOption, follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing events as they are written.")] = False,
        limit: LimitOption = 50, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
        as_json: JsonOption = False) -> None:
    """A thread's latest audit events (``--follow``: and new ones as they come)."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        events = rt.audit.events(thread, principal)[-limit:]
        stream = rt.audit.subscribe(thread, principal, after=events[-1].seq if events else 0,
                                    poll=0.5) if follow else iter(())
        for event in itertools.chain(events, stream):  # what is there first, then what comes
            if as_json:
                print(json.dumps(event.to_dict(), sort_keys=True, default=str))
            else:
                console.print(f"{event.seq:>5} {when(event.at)} {event.kind:<16} "
                              f"{event.node or '-':<14} {event.principal_id or '-':<18} "
                              f"{json.dumps(event.payload, default=str)[:80]}", soft_wrap=True)
            sys.stdout.flush()  # a pipe (| grep, a log shipper) sees each event as it comes


@app.command("export")
def audit_export(who: AsOption, out: Annotated[str, typer.Option("--out", help="File to "
                                                                  "write (JSON Lines).")],
                 thread: Annotated[str | None, typer.Option(
                     "--thread", help="Only this thread's events (default: every thread of "
                     "the principal's tenant).")] = None,
                 db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES) -> None:
    """Export a thread's (or the tenant's) audit events with their chain, for offline checks.
    The file is written whole or not at all; an export of no events is refused."""
    with open_runtime(db, roles) as rt:
        count = rt.audit.export(out, acting_as(who), thread_id=thread)
    console.print(f"wrote {count} events to {out}; check it with `steward audit verify "
                  f"--file {out}`")
