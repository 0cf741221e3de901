"""Durable timers: what ``steward worker`` wakes, and how it wakes it.

A timer is a row, never a process's memory: an approval request's ``expires_at`` (written with
the request, in the node's transaction), a thread's ``expires_at`` (its time to live), a
memory's retention. Every worker looks for due timers every ``every`` seconds; firing one is a
compare-and-set on its row (``expire_op``: pending → expired or escalated), so that it fires
once however many workers see it, and it is not lost when every worker restarts (the row is
still due when the next one starts).

When an approval a thread waits on runs out of time, the same transaction marks the thread to
be woken (``steward.checkpointers.wakes``); a run that died leaves its thread ``stalled``.
Waking is a run of the thread's graph (``graph_id`` in its checkpoints' metadata: the
LangGraph server, ``rt.submit`` and ``rt.config(..., graph_id=...)`` put it there) as the
principal of its last run (``run_as``): the node that asked learns that its request expired
(the guard refuses) or was escalated (it asks the new roles: ``get_state`` shows their
request), and a stalled run goes on from its last checkpoint. The run that takes the thread's
lease clears the mark, so a thread is woken once per timer; a thread no worker can wake (no
principal ran it, or its graph is not in the worker's ``langgraph.json``) is logged once and
left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

import steward
from steward.checkpointers.wakes import due_op
from steward.errors import PolicyDenied
from steward.identity import Principal
from steward.jobs.graphs import Graphs

__all__ = ["Wake", "due", "wake"]

log = logging.getLogger("steward.worker")


@dataclass(frozen=True)
class Wake:
    """A thread to wake: ``why`` is ``stalled``, ``expired`` or ``escalated``."""

    thread_id: str
    why: str
    graph: str
    principal: dict[str, Any]


async def graph_of(rt: steward.Runtime, thread_id: str, who: Principal) -> str | None:
    """The graph a thread runs, as its latest checkpoint names it (``graph_id``); "" when it
    has no checkpoint (its run died before its first step: nothing to continue)."""
    latest = await rt.checkpointer.aget_tuple(
        {"configurable": {"thread_id": thread_id, "principal": who}})
    if latest is None:
        return ""
    name = (latest.metadata or {}).get("graph_id")
    return str(name) if name else None


async def due(rt: steward.Runtime, graphs: Graphs, *, limit: int = 100,
              skipped: set[tuple[str, str, float]] | None = None) -> list[Wake]:
    """The threads to wake now, oldest first. Those that cannot be woken here are logged,
    once per timer when ``skipped`` (the caller's memory) is given."""
    rows = await rt.checkpointer.driver.arun(due_op(rt.checkpointer.threads, limit),
                                             write=False)
    found = []
    for row in rows:
        key = (row.thread_id, row.why, row.since)
        if skipped is not None and key in skipped:
            continue
        reason = None
        if row.run_as is None:
            reason = "no principal has run it"
        else:
            who = Principal.parse(row.run_as)
            name = await graph_of(rt, row.thread_id, who)
            if name == "":
                reason = ("it has no checkpoint: its run died before its first step (run it "
                          "again with its input)")
            elif name is None or name not in graphs.entries:
                reason = (f"its graph {name!r} is not in {graphs.source}" if name else
                          "its checkpoints name no graph (run it with "
                          "rt.config(..., graph_id=NAME))")
            else:
                found.append(Wake(row.thread_id, row.why, name, row.run_as))
                continue
        if skipped is not None:
            skipped.add(key)
        log.warning("thread %s is %s but cannot be woken here: %s", row.thread_id, row.why,
                    reason)
    return found


async def wake(rt: steward.Runtime, graphs: Graphs, *, graph: str, thread_id: str,
               principal: dict[str, Any], job_id: int | None = None) -> Any:
    """Wake one thread, if it still needs it (another worker may have been first): continue
    a stalled run, or run the node whose approval ran out of time. A guard refusing because
    the approval expired ends the run as the policy says (logged, not raised): that is what
    the timer was for. Returns what the run returned, None when there was nothing to do."""
    who = Principal.parse(principal)
    config: RunnableConfig = rt.config(thread_id, who)
    config["metadata"] = {"graph_id": graph, **({"steward_job": job_id} if job_id else {})}
    compiled = await graphs.abuild(graph, rt.checkpointer, rt.store, config)
    info = await rt.checkpointer.athread_info(thread_id, who)
    if info is None:
        return None
    try:
        if info["status"] == "stalled":
            return await rt.aresume(thread_id, who, graph=compiled)
        if info["status"] == "interrupted" and any(
                w.get("expired") or w.get("escalated_to") for w in info["waiting_on"]):
            return await compiled.ainvoke(None, config)
    except PolicyDenied as exc:
        log.info("thread %s: the run woken by its timer ended: %s", thread_id, exc)
    return None
