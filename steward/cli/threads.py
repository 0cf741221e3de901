"""``steward threads``: the threads a principal may read, one thread's state, its history."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
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
    id_table,
    open_runtime,
    print_data,
    when,
)
from steward.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Threads: list, show, history.")


@app.command("list")
def threads_list(who: AsOption, status: Annotated[str | None, typer.Option(
        "--status", help="idle, running, interrupted or erased")] = None,
        limit: LimitOption = 50, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
        as_json: JsonOption = False) -> None:
    """The threads the principal may read, newest first."""
    with open_runtime(db, roles) as rt:
        rows = rt.checkpointer.list_threads(acting_as(who), status=status, limit=limit)
    table = id_table(("thread", [r["thread_id"] for r in rows]), "owner", "status",
                     "waiting on", "updated")
    for r in rows:
        table.add_row(r["thread_id"], str(r["owner"]), r["status"],
                      ", ".join(str(w.get("type")) for w in r["waiting_on"]) or "-",
                      when(r["updated_at"]))
    print_data(rows, as_json, table)


@app.command("show")
def threads_show(thread: str, who: AsOption, db: DbOption = DEFAULT_DB,
                 roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """A thread's identity, its latest values and what it waits on."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        info = rt.checkpointer.thread_info(thread, principal)
        if info is None:
            raise ConfigError(f"no thread {thread!r}: check the id (threads list).")
        latest = rt.checkpointer.get_tuple({"configurable": {"thread_id": thread,
                                                             "principal": principal}})
        values = dict(latest.checkpoint["channel_values"]) if latest else {}
        waiting = rt.approvals.history(thread, principal)
    data = {**info, "values": values, "approvals": waiting}
    if as_json:
        print_data(data, True)
        return
    console.print(Text.assemble((thread, "bold"), f" tenant={info['tenant']} owner="
                                f"{info['owner']} status={info['status']} "
                                f"updated={when(info['updated_at'])}"))
    if info.get("subjects"):  # whose personal data it holds: what `steward erase` reaches
        console.print(f"  subjects: {', '.join(info['subjects'])}")
    for key, value in values.items():
        console.print(f"  {key}: {value!r}"[:300])
    for record in waiting:
        console.print(f"  approval {record['id']} ({record['action']}): {record['status']}")


@app.command("history")
def threads_history(thread: str, who: AsOption, db: DbOption = DEFAULT_DB,
                    roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """A thread's checkpoints, newest first: step, source and who wrote each."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        items = list(rt.checkpointer.list({"configurable": {"thread_id": thread,
                                                            "principal": principal}}))
    rows = [{"checkpoint_id": t.config["configurable"]["checkpoint_id"],
             "step": (t.metadata or {}).get("step"), "source": (t.metadata or {}).get("source"),
             "written_by": (t.metadata or {}).get("principal_id")} for t in items]
    table = Table("checkpoint", "step", "source", "written by")
    for r in rows:
        table.add_row(str(r["checkpoint_id"])[-12:], str(r["step"]), str(r["source"]),
                      str(r["written_by"] or "-"))
    print_data(rows, as_json, table)
