"""Steward's checkpoint saver: one class on SQLite (the embedded default) and PostgreSQL
(scale-out), the one ``steward.open`` builds; ``StewardSaver.from_conn_string(url)`` gives it
alone."""

from steward.checkpointers.saver import StewardSaver

__all__ = ["StewardSaver"]
