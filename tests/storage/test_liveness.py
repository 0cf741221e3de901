"""Who holds a lease, and whether that process still lives (``steward.storage.liveness``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import psycopg
import pytest

from steward.storage.liveness import (
    PG_SESSION_ALIVE,
    PG_SESSIONS_ALIVE,
    PgSession,
    local_alive,
    local_token,
)
from steward.storage.url import parse_url


def test_a_local_holder_lives_until_its_process_is_gone() -> None:
    assert local_alive(local_token()) is True
    child = subprocess.Popen(["sleep", "30"])
    token = local_token(child.pid)
    assert token.startswith(f"{socket.gethostname()}:{child.pid}:")
    assert local_alive(token) is True
    child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while local_alive(token) is not False:  # a zombie until reaped: dead already
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.wait()
    assert local_alive(token) is False


def test_a_forked_child_holds_leases_as_itself() -> None:
    parent = local_token()  # made once per process, and kept
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own token, not the parent's kept one
        try:
            os.write(write, local_token().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.close(read)
    expected = local_token(pid)  # read from /proc before the child is reaped
    os.waitpid(pid, 0)
    assert parent == local_token() == local_token(os.getpid())
    assert child == expected and child != parent


@pytest.mark.parametrize("token", ["elsewhere:1:123", "pg:1:2026-11-30", "garbage",
                                   f"{socket.gethostname()}:x:1"])
def test_nobody_can_tell_for_another_host_or_another_kind_of_token(token: str) -> None:
    assert local_alive(token) is None


def test_a_reused_pid_is_not_the_holder() -> None:
    host, pid, started = local_token().rsplit(":", 2)
    assert local_alive(f"{host}:{pid}:{int(started) + 1}") is False


@pytest.mark.postgres
def test_a_postgres_holder_lives_as_long_as_its_session(pg_url: str) -> None:
    session = PgSession(parse_url(pg_url).target)
    token = session.token()
    assert token.startswith("pg:") and session.token() == token  # one session, kept
    with psycopg.connect(parse_url(pg_url).target, autocommit=True) as other:
        def alive(t: str) -> int:
            return int(other.execute(PG_SESSION_ALIVE.replace("?", "%s"), (t,)).fetchone()[0])

        assert alive(token) == 1
        both = other.execute(PG_SESSIONS_ALIVE.replace("?", "%s"),
                             ([token, "pg:1:never"],)).fetchall()
        assert both == [(token,)]
        session.close()
        deadline = time.monotonic() + 5
        while alive(token):
            assert time.monotonic() < deadline, "the closed session still shows"
            time.sleep(0.02)
    assert session.token() != token  # reopened: a new session
    session.close()
