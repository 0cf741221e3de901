"""``steward worker``: execute submitted runs (PostgreSQL) and keep the periodic duties."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import typer

import steward
from steward.cli.options import DEFAULT_DB, DEFAULT_ROLES, DbOption, RolesOption, console
from steward.examples import WORKFLOWS
from steward.examples.chat import chat_policy
from steward.identity import parse_thread_roles
from steward.jobs.graphs import ENV, Graphs
from steward.options import RuntimeOptions
from steward.workers import Worker, default_duties

__all__ = ["ConfigOption", "policies", "worker"]

ConfigOption = Annotated[str | None, typer.Option(
    "--config", envvar=ENV, show_default=False,
    help="The langgraph.json whose graphs submitted runs name (default ./langgraph.json).")]


def policies(path: str | None) -> steward.Policy | list[steward.Policy]:
    """The policy ``steward.guard`` checks in the worker's runs: ``--policy`` (or
    ``$STEWARD_POLICY``), else the example workflows' and the refund chat's, as the server's."""
    if path:
        return steward.Policy.from_file(path)
    return [*(w.policy() for w in WORKFLOWS.values()), chat_policy()]


def worker(db: DbOption = DEFAULT_DB, config: ConfigOption = None,
           concurrency: Annotated[int, typer.Option(
               "--concurrency", min=1, help="Runs this worker executes at once.")] = 1,
           roles: RolesOption = DEFAULT_ROLES,
           policy: Annotated[str | None, typer.Option(
               "--policy", envvar="STEWARD_POLICY", show_default=False,
               help="A Cedar policy file (default: the example workflows').")] = None,
           lease_ttl: Annotated[float, typer.Option(
               "--lease-ttl", help="Seconds a hung run keeps its thread.")] = 30.0,
           grace: Annotated[float, typer.Option(
               "--grace", help="Seconds SIGTERM lets running runs finish before it puts "
                               "them back in the queue.")] = 30.0,
           heartbeat: Annotated[float, typer.Option(
               "--heartbeat", help="Seconds between the worker's heartbeats.")] = 1.0,
           stalled_after: Annotated[float, typer.Option(
               "--stalled-after", help="Seconds without a heartbeat after which a worker is "
                                       "dead and its runs go to another.")] = 5.0,
           timers_every: Annotated[float, typer.Option(
               "--timers-every", min=0.05,
               help="Seconds between looks for due timers (approvals whose time is up, "
                    "threads to wake).")] = 1.0,
           sweep_every: Annotated[float, typer.Option(
               "--sweep-every", min=0.05,
               help="Seconds between retention sweeps (threads past their time to live, "
                    "memories past their retention).")] = 2.0) -> None:
    """Execute submitted runs (``rt.submit``, ``approvals approve --submit``) until SIGTERM.
    On PostgreSQL: any number of workers on any machines share the queue; the runs of a
    worker that died go to another within --stalled-after + a second or two. Both backends:
    approvals whose time is up are closed and their threads woken (every --timers-every
    seconds), stalled runs are continued, the retention sweep runs every --sweep-every
    seconds; on SQLite there is no queue and the worker does these in its own process."""
    logging.basicConfig(level=os.environ.get("STEWARD_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    graphs = Graphs.locate(config)
    options: RuntimeOptions = {
        "thread_roles": parse_thread_roles(roles, source="--thread-roles"),
        "policy": policies(policy), "lease_ttl": lease_ttl, "graphs": str(graphs.source)}
    loop = Worker(db, graphs, options=options, concurrency=concurrency, heartbeat=heartbeat,
                  stalled_after=stalled_after, grace=grace, timers_every=timers_every,
                  duties=default_duties(sweep_every))

    def ready(mode: str) -> None:
        what = ("executing submitted runs of " + ", ".join(graphs.names())
                if mode == "postgres" else "no job queue on SQLite: timers, stalled runs of "
                + ", ".join(graphs.names()) + " and the retention sweep")
        console.print(f"steward worker ready ({mode}): {what}", soft_wrap=True)

    asyncio.run(loop.run(ready))
    console.print("steward worker stopped")
