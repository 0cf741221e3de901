"""Steward's own checkpoint savers: SQLite (embedded default) and PostgreSQL (scale-out)."""

from steward.checkpointers.postgres import PostgresSaver
from steward.checkpointers.saver import StewardSaver
from steward.checkpointers.sqlite import SqliteSaver

__all__ = ["PostgresSaver", "SqliteSaver", "StewardSaver"]
