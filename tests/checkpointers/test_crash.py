"""SIGKILL a writer at random instants, many times: every thread stays readable and resumable,
and no step's writes are lost or applied twice -- with durability "sync", and with "async",
whose steps are committed without a flush."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support import ALICE, SUPPORT

import steward

WORKER = SUPPORT / "_crash_worker.py"
THREADS, ROUNDS, KILLS = 4, 10_000, 12  # ROUNDS: more than a worker finishes between kills


def _start(url: str, ready: Path, durability: str) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(THREADS), str(ROUNDS), str(ready), durability],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path) -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the worker never started writing"
        time.sleep(0.01)


def _check(url: str, *, finish: bool = False) -> int:
    """Every thread reads back consistent; returns the steps stored (with ``finish``, after
    resuming every interrupted round)."""
    sys.path.insert(0, str(WORKER.parent))
    from _crash_worker import build

    total = 0
    with steward.open(url, lease_ttl=0.5) as rt:
        graph = build(rt.checkpointer)
        for t in range(THREADS):
            config = rt.config(f"T{t}", ALICE)
            state = graph.get_state(config)  # readable after every kill
            info = rt.checkpointer.thread_info(f"T{t}", ALICE)
            if state.tasks:  # a round the kill interrupted: the thread says so
                assert info is not None and info["status"] == "stalled", (t, info)
            if finish and state.tasks:  # rt.resume completes the interrupted round
                rt.resume(f"T{t}", ALICE, graph=graph, durability="sync")
                state = graph.get_state(config)
                assert not state.tasks and len(state.values["log"]) % 3 == 0
            log = state.values.get("log", [])
            rounds = -(-len(log) // 3)
            expected = [f"{n}-{r}" for r in range(rounds) for n in "abc"]
            assert log == expected[:len(log)], f"T{t}: lost or doubled steps: {log}"
            ids = [m.id for m in state.values.get("messages", [])]
            assert ids == expected[:len(ids)], f"T{t}: messages {ids}"
            assert len(ids) == len(log)
            total += len(log)
    return total


def _steps(url: str) -> int:
    """The steps stored so far, read while the worker writes (no checks: it is mid-run)."""
    sys.path.insert(0, str(WORKER.parent))
    from _crash_worker import build

    with steward.open(url) as rt:
        graph = build(rt.checkpointer)
        return sum(len(graph.get_state(rt.config(f"T{t}", ALICE)).values.get("log", []))
                   for t in range(THREADS))


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_writer_killed_at_random_instants_loses_and_repeats_nothing(
        db_url: str, tmp_path: Path, durability: str) -> None:
    rng = random.Random(20261121)
    with steward.open(db_url):
        pass  # create the schema once, outside the kill loop
    ready, stored = tmp_path / "ready", 0
    for _ in range(KILLS if durability == "sync" else KILLS // 2):
        proc = _start(db_url, ready, durability)
        _wait_ready(proc, ready)
        # Once it has stored a step of its own (however busy the machine), kill it somewhere
        # in the middle of the writes that follow.
        deadline = time.monotonic() + 30
        while _steps(db_url) <= stored:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the worker made no progress in 30 s"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        now = _check(db_url)
        assert now > stored, "the worker made no progress between kills"
        stored = now
    _check(db_url, finish=True)
