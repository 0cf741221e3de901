"""One submitted run, executed by a worker: the body of procrastinate's ``steward.run`` job.

The run goes as the submitting principal, with ``rt.config(thread_id, principal)`` (leases,
audit, guards, the effect ledger all apply). A job may be executed more than once: its worker
died and another retries it (``steward.workers.worker``), or a shutdown cut it short. Its
payload is applied at most once:

- every checkpoint a job's run writes carries the job's id (``steward_job`` in the
  checkpoint's metadata), so a checkpoint with it means the input was applied;
- a resume (``Command(resume=...)``) is kept as a write of the interrupted checkpoint until
  its task ends: such a write means the resume was applied too;
- a thread whose run died (``stalled``) is continued with ``rt.aresume``, from its last
  checkpoint; then the payload is applied only if it was not already. A run that died
  after taking the thread's lease but before its first checkpoint left nothing to continue:
  the payload runs (and takes the dead run's lease over).

Runs go with ``durability="sync"``: each step's checkpoint is committed before the next step
starts. With LangGraph's default (``"async"``) a step's tasks run while the checkpoint that
scheduled them is still being written, so a worker killed right after an effect could lose
that checkpoint; the next attempt would resume from an earlier one, schedule the task again
under another id, and the effect -- whose call site is named after its task -- would act a
second time under a new idempotency key.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.types import RESUME
from langgraph.types import Command

import steward
from steward.identity import Principal
from steward.jobs.graphs import Graphs

__all__ = ["JOB_KEY", "applied", "execute"]

JOB_KEY = "steward_job"  # in checkpoint metadata: the job whose run wrote it


async def applied(rt: steward.Runtime, thread_id: str, who: Principal, job_id: int,
                  resume: bool) -> bool:
    """Whether an earlier attempt of job ``job_id`` got its payload into the thread."""
    where: RunnableConfig = {"configurable": {"thread_id": thread_id, "principal": who}}
    async for _ in rt.checkpointer.alist(where, filter={JOB_KEY: job_id}, limit=1):
        return True
    if resume:
        latest = await rt.checkpointer.aget_tuple(where)
        return latest is not None and any(w[1] == RESUME for w in latest.pending_writes or [])
    return False


async def execute(rt: steward.Runtime, graphs: Graphs, job_id: int, *, graph: str,
                  thread_id: str, principal: dict[str, Any], input: Any = None,
                  resume: Any = None, is_resume: bool = False, retried: bool = False) -> Any:
    """Run job ``job_id`` on ``rt``: ``input`` (or ``Command(resume=resume)`` when
    ``is_resume``) on the thread, continuing first a run of it that died. ``retried``: the
    job ran before (its payload may be in the thread already)."""
    who = Principal.parse(principal)
    config = rt.config(thread_id, who)
    config["metadata"] = {JOB_KEY: job_id, "graph_id": graph}
    compiled = await graphs.abuild(graph, rt.checkpointer, rt.store, config)
    done = retried and await applied(rt, thread_id, who, job_id, is_resume)
    info = await rt.checkpointer.athread_info(thread_id, who)
    out = None
    where: RunnableConfig = {"configurable": {"thread_id": thread_id, "principal": who}}
    if info is not None and info["status"] == "stalled" \
            and await rt.checkpointer.aget_tuple(where) is not None:
        out = await rt.aresume(thread_id, who, graph=compiled, durability="sync")
    if not done:
        payload = Command(resume=resume) if is_resume else input
        out = await compiled.ainvoke(payload, config, durability="sync")
    return out
