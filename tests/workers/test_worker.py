"""``steward worker`` processes on a real PostgreSQL (and SQLite): submitted runs complete, a
SIGKILLed worker's run is finished by another within lease_ttl + 10 s with its effect once,
one run per thread at a time, SIGTERM lets the running run finish, and on SQLite the worker
keeps the periodic duties."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _submitted
import pytest
from _support import ALICE, BOB, ROLES, ROOT
from _workers import LEASE_TTL, Workers

import steward
from steward.jobs import Submitted
from steward.jobs.graphs import bind

pytestmark = pytest.mark.postgres


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    found = Workers(pg_url, tmp_path)
    try:
        yield found
    finally:
        found.stop()


def _runtime(w: Workers) -> Any:
    return steward.open(w.url, graphs=w.config, thread_roles=ROLES)


def test_a_submitted_run_completes_and_sigterm_lets_it_finish(workers: Workers) -> None:
    proc = workers.start(STEWARD_TEST_SLEEP_FIRST="1.0")
    with _runtime(workers) as rt:
        handle = rt.submit("factory", "T-1", {"order_id": "1"}, ALICE)
        assert (handle.thread_id, handle.graph) == ("T-1", "factory")
        workers.wait_for("returned")
        proc.send_signal(signal.SIGTERM)  # mid-run: the worker finishes it, then leaves
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "steward worker stopped" in out
        status = rt.run_status(handle, ALICE)
        assert status["job"] == "succeeded" and status["thread"] == "idle", status
        assert status["values"] == {"order_id": "1", "receipt": "refund of 1", "done": True}
        assert len(workers.world.read_text().splitlines()) == 1
        # The run went as alice, under Steward's config: audited.
        assert rt.audit.events("T-1", ALICE)


def test_a_killed_workers_run_is_finished_by_another_exactly_once(workers: Workers) -> None:
    workers.start(STEWARD_TEST_SLEEP_FIRST="60")
    with _runtime(workers) as rt:
        handle = rt.submit("slow", "T-kill", {"order_id": "7"}, ALICE)
        pid = int(workers.wait_for("returned").split()[1])  # the effect has acted
        workers.start()  # a second worker, idle until the first dies
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        status = rt.run_status(handle, ALICE, wait=LEASE_TTL + 10)
        took = time.monotonic() - killed
        assert status["job"] == "succeeded", status
        assert took < LEASE_TTL + 10, took
        assert took < 8, f"takeover took {took:.1f}s (heartbeat 0.5 s, stalled after 2 s)"
        assert status["values"]["done"] is True
        # The effect acted once; its node ran again on the other worker, and got the record.
        assert len(workers.world.read_text().splitlines()) == 1
        finisher = {int(line.split()[1]) for line in workers.lines("later")}
        assert len(workers.lines("later")) == 1 and pid not in finisher


def test_one_active_run_per_thread_under_concurrent_submissions(workers: Workers) -> None:
    workers.start("--concurrency", "4", STEWARD_TEST_SLEEP="0.3")
    workers.start("--concurrency", "4", STEWARD_TEST_SLEEP="0.3")
    with _runtime(workers) as rt:
        handles: list[Any] = []

        def submit(thread: str, n: int) -> None:
            handles.append(rt.submit("slow", thread, {"order_id": str(n)}, ALICE))

        threads = [threading.Thread(target=submit, args=(t, n))
                   for n, t in enumerate(["T-a", "T-a", "T-a", "T-b", "T-b"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [rt.run_status(h, ALICE, wait=20)["job"] for h in handles] == ["succeeded"] * 5
    spans: dict[str, list[tuple[float, float]]] = {}
    opened: dict[str, float] = {}
    for line in workers.marks.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "enter":
            assert rest[0] not in opened, f"two runs of {rest[0]} at once"
            opened[rest[0]] = float(rest[1])
        elif kind == "leave":
            spans.setdefault(rest[0], []).append((opened.pop(rest[0]), float(rest[1])))
    assert sorted(len(v) for v in spans.values()) == [2, 3]
    # Yet the two threads ran side by side: one run per thread, not one run at a time.
    assert any(max(a0, b0) < min(a1, b1) for a0, a1 in spans["T-a"] for b0, b1 in spans["T-b"])


def test_approve_submit_records_the_vote_and_a_worker_runs_the_rest(
        workers: Workers, tmp_path: Path) -> None:
    env = {**workers.env, "STEWARD_DB": workers.url, "STEWARD_GRAPHS": str(ROOT /
                                                                          "langgraph.json")}

    def cli(*args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "steward.cli", *args, "--json"],
                              env=env, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    started = cli("run", "refund", "--as", "acme/alice:support", "--thread", "R-1")
    assert started["status"] == "waiting", started
    request = started["waiting_on"][0]["id"]
    voted = cli("approvals", "approve", request, "--as", "acme/bob:manager", "--submit")
    assert voted["submitted"] is True and voted["thread_id"] == "R-1", voted
    # Nothing ran yet: the thread still waits; a worker (the repository's graphs) runs it.
    with _runtime(workers) as rt:
        assert rt.checkpointer.thread_info("R-1", ALICE)["status"] == "interrupted"
        proc = subprocess.Popen([sys.executable, "-m", "steward.cli", "worker"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        workers.procs.append(proc)
        handle = Submitted(voted["job_id"], "R-1", "refund")
        status = rt.run_status(handle, BOB, wait=30)
        assert status["job"] == "succeeded", status
        assert status["values"]["outcome"]["status"] == "refunded", status
        assert status["thread"] == "idle"


def test_on_sqlite_the_worker_keeps_the_periodic_duties(
        workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEST_WORLD", str(workers.world))
    monkeypatch.setenv("STEWARD_TEST_MARKS", str(workers.marks))
    url = f"sqlite:///{tmp_path}/steward.db"
    with steward.open(url) as rt:
        graph = bind(_submitted.builder, rt.checkpointer, rt.store)
        graph.invoke({"order_id": "1"}, rt.config("T-old", ALICE, ttl=0.5))
        with pytest.raises(steward.ConfigError, match="needs PostgreSQL"):
            rt.submit("slow", "T-new", {"order_id": "2"}, ALICE)
        proc = workers.start(url=url)
        deadline = time.monotonic() + 5  # its time to live passes; nobody touches it
        while rt.checkpointer.thread_info("T-old", ALICE) is not None:
            assert time.monotonic() < deadline, "the worker did not sweep the thread"
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "steward worker stopped" in out, out
