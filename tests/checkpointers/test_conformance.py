"""LangGraph's checkpointer conformance suite, all eight capabilities, on every backend, plain,
encrypted with one key, and with a data key per thread from AWS KMS (moto, tests/_kms.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _kms import Kms
from _pg import PgServer
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport

from steward.checkpointers import StewardSaver

CAPABILITIES = {"put", "put_writes", "get_tuple", "list", "delete_thread", "delete_for_runs",
                "copy_thread", "prune"}


def _assert_all_passed(report: CapabilityReport) -> None:
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert not failures, failures
    assert set(report.results) == CAPABILITIES
    for cap, result in report.results.items():
        assert result.detected, f"capability {cap} not detected"
        assert result.tests_skipped == 0, cap
    assert sum(r.tests_passed for r in report.results.values()) == 81
    assert report.passed_all()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_sqlite_conformance(tmp_path: Path, encrypted: bool) -> None:
    files = iter(range(100))

    @checkpointer_test(name=f"steward-sqlite-{encrypted}")
    async def factory() -> AsyncIterator[StewardSaver]:
        key = secrets.token_hex(32) if encrypted else None
        url = f"sqlite:///{tmp_path}/c{next(files)}.db"
        with StewardSaver.from_conn_string(url, encryption_key=key) as saver:
            yield saver

    _assert_all_passed(await validate(factory))


@pytest.mark.postgres
@pytest.mark.parametrize("pool", ["async", "sync"])
async def test_postgres_conformance(pg_server: PgServer, pool: str) -> None:
    urls: list[str] = []

    @checkpointer_test(name=f"steward-postgres-{pool}")
    async def factory() -> AsyncIterator[StewardSaver]:
        url = pg_server.create_database("conf")
        urls.append(url)
        if pool == "async":
            async with StewardSaver.afrom_conn_string(url, pool_size=4) as saver:
                yield saver
        else:
            with StewardSaver.from_conn_string(url, pool_size=4) as saver:
                yield saver

    try:
        _assert_all_passed(await validate(factory))
    finally:
        for url in urls:
            pg_server.drop_database(url)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
async def test_kms_conformance(tmp_path: Path, backend: str, kms: Kms,
                               request: pytest.FixtureRequest) -> None:
    """Per-thread data keys pass the suite too: every payload of every capability (copies
    re-sealed under the copy's own key, prunes that compact, listings across threads)."""
    files = iter(range(100))
    urls: list[str] = []
    keys = kms.keys()  # one provider for all: its cache spans the databases, as keys do

    @checkpointer_test(name=f"steward-{backend}-kms")
    async def factory() -> AsyncIterator[StewardSaver]:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/k{next(files)}.db"
        else:
            url = request.getfixturevalue("pg_server").create_database("kms")
            urls.append(url)
        async with StewardSaver.afrom_conn_string(url, encryption_key=keys,
                                                  pool_size=4) as saver:
            yield saver

    try:
        _assert_all_passed(await validate(factory))
    finally:
        for url in urls:
            request.getfixturevalue("pg_server").drop_database(url)
