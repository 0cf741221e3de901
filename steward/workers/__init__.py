"""Workers that execute submitted runs (``steward worker``), on procrastinate's PostgreSQL job
queue, fire the durable timers and keep the periodic duties.

- ``execute``: one submitted run, its payload applied at most once across retries;
- ``timers``: durable timers, the threads to wake (an approval ran out of time, a run died)
  and the wake-up run;
- ``worker``: :class:`Worker`, the process's loop (jobs, requeueing dead workers' runs,
  periodic :class:`Duty` callables, graceful shutdown).
"""

from __future__ import annotations

from steward.workers.execute import execute
from steward.workers.worker import Duty, Worker, default_duties

__all__ = ["Duty", "Worker", "default_duties", "execute"]
