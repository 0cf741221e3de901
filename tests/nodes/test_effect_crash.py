"""SIGKILL a workflow (a) right after its effect returned, (b) during the effect, (c) during a
later node; resume it from this process: the refund happened exactly once for (a) and (c), and
for (b) every attempt carried the same idempotency key (issue #5)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _effect_worker import ALICE, LEASE_TTL, build, run
from _support import SUPPORT

import steward

WORKER = SUPPORT / "_effect_worker.py"
ROUNDS = 3  # per moment and backend
MOMENTS = {"a": "returned", "b": "in-effect", "c": "later"}


def _kill_at(url: str, thread: str, world: Path, marks: Path, mark: str,
             rng: random.Random) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, thread, str(world), str(marks)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (marks.exists() and mark in marks.read_text().split()):
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, f"the worker never reached {mark!r}"
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.08) if mark == "in-effect" else rng.uniform(0, 0.1))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert "finished" not in marks.read_text().split(), "the kill came too late"


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_an_effect_survives_a_kill(db_url: str, tmp_path: Path, moment: str) -> None:
    rng = random.Random(f"{moment}-{db_url.split(':')[0]}")
    with steward.open(db_url):
        pass  # the schema, once, outside the kills
    for n in range(ROUNDS):
        thread = f"T-{moment}-{n}"
        world, marks = tmp_path / f"world-{n}", tmp_path / f"marks-{n}"
        _kill_at(db_url, thread, world, marks, MOMENTS[moment], rng)
        with steward.open(db_url, lease_ttl=LEASE_TTL) as rt:
            graph = build(rt.checkpointer, str(world), str(marks))
            config = rt.config(thread, ALICE)
            out = run(graph, None, config)  # resume what the killed process left
            assert out["done"] is True
            keys = world.read_text().split() if world.exists() else []
            if moment == "b":
                assert keys and len(set(keys)) == 1, keys  # retried, never under a new key
            else:
                assert len(keys) == 1, keys  # exactly once
            assert out["receipt"].endswith(keys[0])
            assert run(graph, None, config)["receipt"] == out["receipt"]  # nothing re-runs
            assert len(world.read_text().split()) == len(keys)
