"""The example workflows' systems of record: small SQLite files the tools act on, created and
seeded on first use, so that every effect can be seen from outside the graph."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["records_path", "system_of_record"]


def records_path() -> Path:
    """The records of access, close and research (``$STEWARD_DEMO_RECORDS``)."""
    return Path(os.environ.get("STEWARD_DEMO_RECORDS", "steward-demo-records.db"))


@contextlib.contextmanager
def system_of_record(path: Path, schema: Sequence[str],
                     seeds: Mapping[str, Sequence[Sequence[Any]]] | None = None
                     ) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction, committed on success; ``schema`` is created and
    ``seeds`` (an INSERT OR IGNORE statement -> its rows) written first."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for ddl in schema:
            conn.execute(ddl)
        for insert, rows in (seeds or {}).items():
            conn.executemany(insert, rows)
        yield conn
