"""The benchmark keeps running: a quick SQLite pass must finish and report its targets.

(Speed itself is measured by ``make bench``, never asserted here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "checkpointer.py"


def test_the_benchmark_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-postgres", "--rounds", "1",
         "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("chain: ckpt/s", "chat: KiB after", "tenants: list ms", "Targets"):
        assert line in done.stdout, line


def test_the_memory_benchmark_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "memory.py"), "--sizes", "200,400", "--others",
         "100", "--queries", "3", "--no-model", "--no-postgres", "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exact scan stays under 50 ms" in done.stdout


def test_the_takeover_benchmark_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "takeover.py"), "--kills", "2", "--no-postgres",
         "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sqlite: resumed and finished after the kill: median" in done.stdout


def test_the_timer_benchmark_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "timers.py"), "--threads", "4", "--no-postgres",
         "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sqlite: timer lateness from expires_at to the node running: median" in done.stdout
