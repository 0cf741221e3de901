"""The checkpointer: Steward's LangGraph saver and its thread table.

- ``saver``: :class:`StewardSaver`, one class on SQLite and PostgreSQL (``steward.open``
  builds it; ``StewardSaver.from_conn_string(url)`` gives it alone);
- ``threads``: the thread table (identity, access rule, leases, subjects), shared with the
  parts that read threads; ``participants``: the protocols its collaborators meet;
- ``sql``, ``schema``: its statements and migrations; ``deltas``: lists stored as deltas;
  ``configs``: what a LangGraph config tells it; ``connect``: from a URL to a saver;
  ``lease``: the callback handlers that hold a run's lease.
"""

from steward.checkpointers.saver import StewardSaver

__all__ = ["StewardSaver"]
