"""The embedded default: one SQLite file in WAL mode, no server needed."""

from __future__ import annotations

from typing import Any

from steward._url import mask
from steward.checkpointers._drivers import SqliteDriver
from steward.checkpointers.saver import StewardSaver


class SqliteSaver(StewardSaver):
    """A :class:`StewardSaver` on a SQLite file (or ``":memory:"``)."""

    driver: SqliteDriver

    @classmethod
    def from_path(cls, path: str, **options: Any) -> SqliteSaver:
        """Open (creating if needed) the database file and set up its schema."""
        url = "sqlite://:memory:" if path == ":memory:" else mask(f"sqlite:///{path}")
        saver = cls(SqliteDriver(path, url), **options)
        saver.setup()
        return saver

    def close(self) -> None:
        super().close()
        self.driver.close()
