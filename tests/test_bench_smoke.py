"""The benchmarks keep running: a quick SQLite pass must finish and report its targets; the
workers' quick pass (on PostgreSQL) must lose no run and repeat no effect.

(Speed itself is measured by ``make bench``, never asserted here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _pg import PgServer

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
         "100", "--queries", "3", "--no-model", "--no-postgres", "--no-index", "--tmpdir",
         str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exact scan stays under 50 ms" in done.stdout


@pytest.mark.postgres
@pytest.mark.pgvector
def test_the_memory_benchmarks_pgvector_section_runs_quickly(pgvector_server: PgServer) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "memory.py"), "--quick", "--index-only",
         "--index-sizes", "300,600", "--index-others", "100", "--index-queries", "4",
         "--exact-queries", "2", "--ef-search", "40,200", "--pgvector-url",
         pgvector_server.admin_url],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for line in ("Recall on pgvector", "hnsw, ef_search 100", "exact (the store's scan)",
                 "= NumPy's top 10 on 2/2", "profile: server execution"):
        assert line in done.stdout, line


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


@pytest.mark.postgres
def test_the_workers_benchmark_runs_quickly_and_loses_no_effect(pg_server: PgServer,
                                                                tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "workers.py"), "--quick", "--workers", "1",
         "--kills", "1", "--storm-runs", "6", "--node-sleep", "0.3", "--kill-every", "1.5",
         "--pg-url", pg_server.admin_url, "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Throughput:" in done.stdout and "Takeover:" in done.stdout
    assert "runs done; effects: 0 missing, 0 duplicated" in done.stdout, done.stdout


def test_the_runtime_benchmark_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "runtime.py"), "--quick", "--no-postgres",
         "--rounds", "1", "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("Steps: the 10-node chain", "median ms/turn, turns 1-10",
                 "Steward's bytes per table", "steward_audit", "Trips (sqlite)",
                 "Targets from issue 17"):
        assert line in done.stdout, line


@pytest.mark.postgres
def test_the_runtime_benchmark_runs_quickly_on_postgres(pg_server: PgServer) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "runtime.py"), "--quick", "--no-sqlite",
         "--rounds", "1", "--turns", "4", "--pg-url", pg_server.admin_url],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for line in ("Steps: the 10-node chain", "Concurrent: 4 async runs at once",
                 "Steward rt.config", "Trips (postgres)", "round trips over stock"):
        assert line in done.stdout, line


def test_the_step_profile_runs_quickly_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "profile.py"), "--runs", "3", "--no-postgres",
         "--tmpdir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("LangGraph alone", "commit (its WAL flush)", "floor: one bare durable commit"):
        assert line in done.stdout, line


@pytest.mark.postgres
def test_the_ceiling_ladder_runs_quickly(pg_server: PgServer, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "ceiling.py"), "--durability", "sync,exit",
         "--rounds", "1", "--runs", "2", "--pg-url", pg_server.admin_url,
         "--tmpdir", str(tmp_path), "--parts"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for backend in ("SQLite", "PostgreSQL"):
        for durability in ("sync", "exit"):
            assert f"{backend}: the 10-node chain, durability {durability}" in done.stdout
    for side in ("+ audit", "+ fence", "+ lease", "rt.config", "without events",
                 "without indexes"):
        assert side in done.stdout, side
    assert done.stdout.count("vs rt.config") == 8  # two parts, two durabilities, two backends


_UNDROPPED = """
import tempfile, ceiling
ceiling._drop = lambda indexes: iter(())  # the indexes stay
with tempfile.TemporaryDirectory() as tmp:
    with ceiling.sides("sqlite", lambda name: f"{tmp}/{name}.db", "sync", True) as runs:
        for name, run in runs.items():
            run(f"once-{name}")
"""


def test_the_ceiling_ladder_refuses_a_part_it_did_not_take_away() -> None:
    """A side named for a missing part that still has it fails the benchmark: its figure
    would say the part costs nothing."""
    done = subprocess.run([sys.executable, "-c", _UNDROPPED], cwd=BENCH.parent,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "RuntimeError: the side without indexes kept some of" in done.stderr, done.stderr
