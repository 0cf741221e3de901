"""The ``workers`` fixture: worker processes on the test PostgreSQL, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _workers import Workers


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    found = Workers(pg_url, tmp_path)
    try:
        yield found
    finally:
        found.stop()
