"""Real ``steward worker`` processes for the tests: started on one database with the graphs
of ``tests/_submitted.py`` and ``tests/_timed.py`` (named in a langgraph.json they write), and
the files their runs write (the outside world, and marks saying where each run is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _support import ROOT, SUPPORT

LEASE_TTL = 30.0  # the default: a dead worker's run must not wait it out


class Workers:
    """Worker processes on one database, the graphs of tests/_submitted.py, and the files
    their runs write (the outside world, and where each run is)."""

    def __init__(self, url: str, where: Path) -> None:
        self.url = url
        self.config = where / "langgraph.json"
        self.config.write_text(json.dumps({"graphs": {
            "slow": f"{SUPPORT / '_submitted.py'}:builder",
            "factory": f"{SUPPORT / '_submitted.py'}:factory",
            "timed": f"{SUPPORT / '_timed.py'}:builder"}}))
        self.world, self.marks = where / "world", where / "marks"
        self.world.touch()
        self.marks.touch()
        self.env = {**os.environ, "STEWARD_TEST_WORLD": str(self.world),
                    "STEWARD_TEST_MARKS": str(self.marks), "PYTHONPATH": str(ROOT)}
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, url: str | None = None, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "steward.cli", "worker", "--db", url or self.url,
             "--config", str(self.config), "--heartbeat", "0.5", "--stalled-after", "2",
             "--lease-ttl", str(LEASE_TTL), "--thread-roles", "manager=write", *args],
            env={**self.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=ROOT)
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "steward worker ready" in line, line + proc.stdout.read()
        return proc

    def lines(self, prefix: str) -> list[str]:
        return [ln for ln in self.marks.read_text().splitlines() if ln.startswith(prefix)]

    def wait_for(self, prefix: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while not self.lines(prefix):
            assert time.monotonic() < deadline, f"no {prefix!r} mark"
            time.sleep(0.02)
        return self.lines(prefix)[0]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
