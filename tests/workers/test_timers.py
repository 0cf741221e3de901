"""Durable timers under real ``steward worker`` processes, on both backends: an approval that
runs out of time is rejected (or escalated) on time with nobody touching its thread, a timer
survives every worker being killed and fires once, a run that died is finished by the worker
on SQLite, and a thread no worker can wake is left as it is and said so."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _timed
import pytest
from _support import ALICE, ROLES, ROOT
from _workers import Workers
from langgraph.types import Command

import steward
from steward.jobs.graphs import bind

DIRECTOR = steward.Principal(id="dora", tenant="acme", roles=frozenset({"director"}))
EXPIRES_IN = 1.5
BOUND = 5.0  # the bound: a timer fires within 5 s of its time


@pytest.fixture
def workers(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    found = Workers(db_url, tmp_path)
    monkeypatch.setenv("STEWARD_TEST_MARKS", str(found.marks))
    monkeypatch.setenv("STEWARD_TEST_WORLD", str(found.world))
    monkeypatch.setenv("STEWARD_TEST_EXPIRES_IN", str(EXPIRES_IN))
    try:
        yield found
    finally:
        found.stop()


def _ask(rt: steward.Runtime, thread: str, **configurable: Any) -> tuple[Any, dict[str, Any]]:
    """Start a ``timed`` run as alice: it waits on a manager's approval."""
    graph = bind(_timed.builder, rt.checkpointer, rt.store)
    out = graph.invoke({"amount": "900"}, rt.config(thread, ALICE, **configurable))
    [waiting] = out["__interrupt__"]
    return graph, waiting.value


def _marks(w: Workers, prefix: str, thread: str) -> list[list[str]]:
    return [line.split()[2:] for line in w.lines(prefix) if line.split()[1] == thread]


def _wait_for(w: Workers, prefix: str, thread: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while not _marks(w, prefix, thread):
        assert time.monotonic() < deadline, f"no {prefix!r} mark for {thread}"
        time.sleep(0.05)
    return _marks(w, prefix, thread)[0]


def _expires_at(request: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(request["expires_at"]).timestamp()


def test_an_expired_approval_is_rejected_on_time_with_nobody_touching(
        workers: Workers) -> None:
    with steward.open(workers.url, thread_roles=ROLES) as rt:
        _, request = _ask(rt, "T-exp", graph_id="timed")
        proc = workers.start("--timers-every", "0.2")
        # Nobody touches the thread: the worker closes the request and wakes the node.
        decision, pid, at = _wait_for(workers, "decided", "T-exp", EXPIRES_IN + BOUND + 5)
        assert decision == "expired" and int(pid) == proc.pid
        late = float(at) - _expires_at(request)
        assert 0 <= late < BOUND, late
        _wait_for(workers, "later", "T-exp", 10)
        assert len(_marks(workers, "decided", "T-exp")) == 1
        info = rt.checkpointer.thread_info("T-exp", ALICE)
        assert info is not None and info["status"] == "idle", info
        state = rt.checkpointer.get_tuple(rt.config("T-exp", ALICE))
        assert state is not None and state.checkpoint["channel_values"]["done"] is True
        [record] = rt.approvals.history("T-exp", ALICE)
        assert record["status"] == "expired"
        # The chain says the clock did it, once, and still verifies.
        events = rt.audit.events("T-exp", ALICE)
        fired = [e for e in events if e.kind == "approval_expired"]
        assert [(e.principal_id, e.payload["request_id"]) for e in fired] == [
            ("steward-timer", request["id"])]
        assert rt.audit.verify("T-exp") == len(events)


def test_an_escalation_fires_on_time_and_the_new_roles_may_answer(
        workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEST_ESCALATE", "1")
    with steward.open(workers.url, thread_roles=ROLES) as rt:
        graph, first = _ask(rt, "T-esc", graph_id="timed")
        config = rt.config("T-esc", ALICE)
        workers.start("--timers-every", "0.2", STEWARD_TEST_ESCALATE="1")
        deadline = time.monotonic() + EXPIRES_IN + BOUND
        while True:  # woken: the node asks the directors, as get_state shows
            shown = [i.value for i in graph.get_state(config).interrupts]
            if shown and shown[0]["id"] != first["id"]:
                break
            assert time.monotonic() < deadline, "the escalation did not fire within 5 s"
            time.sleep(0.05)
        assert shown[0]["required_roles"] == ["director"]
        assert [p["id"] for p in rt.approvals.pending(DIRECTOR)] == [shown[0]["id"]]
        assert not _marks(workers, "decided", "T-esc")  # still waiting, on the directors
        # A director holds no grant on the thread: the approver's reach lets her answer.
        out = graph.invoke(Command(resume={"decision": "approve"}),
                           rt.config("T-esc", DIRECTOR))
        assert out["decision"] == "approve" and out["done"] is True
        statuses = [r["status"] for r in rt.approvals.history("T-esc", ALICE)]
        assert statuses == ["escalated", "approved"]
        kinds = [e.kind for e in rt.audit.events("T-esc", ALICE)]
        assert kinds.count("approval_escalated") == 1


@pytest.mark.postgres
def test_a_timer_survives_every_worker_restarting_and_fires_once(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = Workers(pg_url, tmp_path)
    monkeypatch.setenv("STEWARD_TEST_MARKS", str(w.marks))
    monkeypatch.setenv("STEWARD_TEST_EXPIRES_IN", "6")
    try:
        with steward.open(pg_url, thread_roles=ROLES) as rt:
            _, request = _ask(rt, "T-restart", graph_id="timed")
            first = [w.start("--timers-every", "0.2"), w.start("--timers-every", "0.2")]
            for proc in first:  # every worker dies before the timer's time
                proc.kill()
                proc.wait()
            assert time.time() < _expires_at(request), "the workers took too long to start"
            time.sleep(_expires_at(request) - time.time() + 0.5)
            assert not _marks(w, "decided", "T-restart")
            assert [r["status"] for r in rt.approvals.history("T-restart", ALICE)] == [
                "pending"]
            # Two workers start again: the timer fires, once.
            w.start("--timers-every", "0.1")
            w.start("--timers-every", "0.1")
            _wait_for(w, "later", "T-restart", BOUND + 5)
            time.sleep(1.5)  # time enough for a second firing, were there one
            assert [m[0] for m in _marks(w, "decided", "T-restart")] == ["expired"]
            assert len(_marks(w, "later", "T-restart")) == 1
            kinds = [e.kind for e in rt.audit.events("T-restart", ALICE)]
            assert kinds.count("approval_expired") == 1
    finally:
        w.stop()


def test_on_sqlite_the_worker_finishes_a_run_that_died(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/steward.db"
    w = Workers(url, tmp_path)
    monkeypatch.setenv("STEWARD_TEST_MARKS", str(w.marks))
    monkeypatch.setenv("STEWARD_TEST_WORLD", str(w.world))
    code = ("import sys, steward, _submitted\n"
            "from steward.jobs.graphs import bind\n"
            "rt = steward.open(sys.argv[1])\n"
            "graph = bind(_submitted.builder, rt.checkpointer, rt.store)\n"
            "graph.invoke({'order_id': '5'}, rt.config('T-died', "
            "{'id': 'alice', 'tenant': 'acme', 'roles': ['support']}, graph_id='slow'))\n")
    app = subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT,
                           env={**w.env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
                                "STEWARD_TEST_SLEEP_FIRST": "60"})
    try:
        pid = int(w.wait_for("returned").split()[1])  # the effect acted; the run is mid-way
        assert pid == app.pid
        app.send_signal(signal.SIGKILL)
        app.wait()
        proc = w.start("--timers-every", "0.2")
        deadline = time.monotonic() + BOUND
        while not w.lines("later"):
            assert time.monotonic() < deadline, "the worker did not finish the stalled run"
            time.sleep(0.05)
        assert [int(line.split()[1]) for line in w.lines("later")] == [proc.pid]
        assert len(w.world.read_text().splitlines()) == 1  # the effect acted once
        with steward.open(url) as rt:
            info = rt.checkpointer.thread_info("T-died", ALICE)
            assert info is not None and info["status"] == "idle", info
    finally:
        if app.poll() is None:
            app.kill()
        w.stop()


def test_a_thread_no_worker_can_wake_is_left_as_it_is_and_said_so(
        workers: Workers) -> None:
    with steward.open(workers.url, thread_roles=ROLES) as rt:
        _ask(rt, "T-unnamed")  # no graph_id: a worker cannot know which graph to run
        proc = workers.start("--timers-every", "0.2")
        deadline = time.monotonic() + EXPIRES_IN + BOUND
        while rt.approvals.history("T-unnamed", ALICE)[0]["status"] != "expired":
            assert time.monotonic() < deadline, "the request did not expire"
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert not _marks(workers, "decided", "T-unnamed")
        assert out.count("thread T-unnamed is expired but cannot be woken here") == 1, out
        assert "rt.config(..., graph_id=NAME)" in out
        info = rt.checkpointer.thread_info("T-unnamed", ALICE)
        assert info is not None and info["status"] == "interrupted"
        # Whoever touches it next gets the expiry, as before there were timers.
        graph = bind(_timed.builder, rt.checkpointer, rt.store)
        out_ = graph.invoke(None, rt.config("T-unnamed", ALICE))
        assert out_["decision"] == "expired" and out_["done"] is True
