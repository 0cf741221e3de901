"""Who holds a lease, and whether that process still lives.

A run's lease names its holder's process, so that another process can tell a dead holder at
once instead of waiting ``lease_ttl`` for the lease to run out:

- **One machine (SQLite):** ``host:pid:start``, the host name, the process id and the
  process's start time (Linux's ``/proc``, so that a reused pid is not mistaken for the
  holder). A holder on this host whose process is gone is dead; on another host nobody can
  tell, and the lease runs out as before.
- **PostgreSQL:** ``pg:pid:start`` of a connection the holder keeps open for no other purpose
  (:class:`PgSession`). The server ends that session when the holder's process dies, or its
  machine, or the network between them: a lease whose session is no longer in
  ``pg_stat_activity`` is dead (``PG_SESSION_ALIVE``, checked inside the claim).

A hung process keeps its session and its pid: its lease still runs out after ``lease_ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from typing import Any

from steward.storage.passwords import Password, connect_args

__all__ = ["PG_SESSION", "PG_SESSIONS_ALIVE", "PG_SESSION_ALIVE", "PgSession", "local_alive",
           "local_token"]

# The session's own token, and whether a token's session still lives.
PG_SESSION = ("SELECT 'pg:' || pg_backend_pid() || ':' || "
              "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())::text")
PG_SESSION_ALIVE = ("SELECT count(*) FROM pg_stat_activity WHERE 'pg:' || pid || ':' || "
                    "backend_start::text = ?")
# Of several tokens (a list parameter), those whose session lives.
PG_SESSIONS_ALIVE = ("SELECT token FROM (SELECT 'pg:' || pid || ':' || backend_start::text "
                     "AS token FROM pg_stat_activity) AS s WHERE token = ANY(?)")


def _stat(pid: int) -> list[str]:
    """``/proc/PID/stat`` from its third field on (state, ppid, ...), or [] without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22), or "" without /proc."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


# This process's (pid, token): a forked child, whose pid differs, makes its own (and never
# takes an ancestor's, as a table of every pid seen could give it once pids are reused).
_own: tuple[int, str] | None = None


def local_token(pid: int | None = None) -> str:
    """This process (or ``pid``) as a lease holder on this machine. Its own token is made
    once: every run takes a lease, and reading ``/proc`` is a file's open and read, system
    calls that let another thread take the GIL in the middle of a run's start."""
    global _own
    me = os.getpid()
    if pid is not None and pid != me:
        return f"{socket.gethostname()}:{pid}:{_started(pid)}"
    own = _own
    if own is None or own[0] != me:
        own = _own = (me, f"{socket.gethostname()}:{me}:{_started(me)}")
    return own[1]


def local_alive(token: str) -> bool | None:
    """Whether the process a ``local_token`` names lives: True or False on this host, None
    when it cannot tell (another host, or not such a token)."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3 or token.startswith("pg:"):
        return None
    host, pid_text, started = parts
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not started or (len(fields) > 19 and fields[19] == started)


class PgSession:
    """The connection whose session stands for this process in its leases (PostgreSQL).

    Opened on first use and kept open, idle, until :meth:`close`; reopened if it broke (its
    leases then name a session the server ended: other processes may take them over, and the
    fence stops this process's writes to them)."""

    def __init__(self, conninfo: str, connect_timeout: int = 5,
                 password: Password | None = None) -> None:
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self.password = password  # asked again whenever the session is reopened
        self._conn: Any = None
        self._token: str | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        import psycopg

        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._close()
                self._conn = psycopg.connect(self.conninfo, **connect_args(
                    self.password, autocommit=True, connect_timeout=self.connect_timeout,
                    application_name="steward-lease"))
                self._token = str(self._conn.execute(PG_SESSION).fetchone()[0])
            assert self._token is not None
            return self._token

    async def atoken(self) -> str:
        """:meth:`token` off the event loop (opening the connection blocks)."""
        return await asyncio.to_thread(self.token)

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn, self._token = None, None

    def close(self) -> None:
        with self._lock:
            self._close()
