"""Submitted runs: the job queue they wait in (PostgreSQL, on procrastinate) and the graphs
they name (``langgraph.json``).

- ``graphs``: :class:`Graphs`, the graphs of a ``langgraph.json`` by name, loaded as the
  LangGraph server loads them (compiled graphs, builders, factories) and bound to a runtime's
  checkpointer and store;
- ``queue``: :class:`JobQueue`, procrastinate's jobs table on the runtime's PostgreSQL
  database (the ``workers`` extra), and :class:`Submitted`, the handle ``rt.submit`` returns.

``Runtime.submit`` checks a run and queues it here; ``steward worker`` (``steward.workers``)
executes it.
"""

from __future__ import annotations

from steward.jobs.graphs import Graphs
from steward.jobs.queue import JobQueue, Submitted

__all__ = ["Graphs", "JobQueue", "Submitted"]
