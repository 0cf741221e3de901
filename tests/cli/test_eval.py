"""``steward eval`` on the command line: the scorecard and the guarantees printed, exit 0 when
every guarantee held, 1 naming the thread of each that broke, 2 when it cannot run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SMALL = ["--runs", "7", "--workflows", "refund", "--seed", "2", "--crashes", "1", "--outage",
         "1"]


def _eval(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "120",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "steward.cli", "eval", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_an_evaluation_prints_the_scorecard_and_holds(tmp_path: Path) -> None:
    page = tmp_path / "eval.html"
    done = _eval(*SMALL, "--html", str(page), env={"STEWARD_DB": "sqlite:///nowhere/x.db"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    out = done.stdout
    assert "Steward scorecard — tenant acme" in out  # steward report's table, for this run
    for seen in ("What was injected", "Adversarial requests", "Guarantees",
                 "steward eval: every guarantee held (seed 2; reproduce with --seed 2)"):
        assert seen in out
    assert "BROKEN" not in out and "<svg" in page.read_text()
    assert not Path("nowhere").exists()  # $STEWARD_DB is not eval's: a fresh database is


def test_json_has_the_scorecard_and_the_checks(tmp_path: Path) -> None:
    done = _eval(*SMALL, "--json", "--db", f"sqlite:///{tmp_path}/eval.db")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert data["ok"] and data["seed"] == 2 and data["threads"] == 7
    assert data["scorecard"]["completion"]["threads"] == 7
    assert set(data["checked"]) == {"duplicated", "missing", "forbidden", "chain", "error"}
    again = _eval(*SMALL, "--db", f"sqlite:///{tmp_path}/eval.db")
    assert again.returncode == 2 and "needs a fresh database" in again.stderr


@pytest.mark.parametrize(("sabotage", "guarantee"), [("pay-twice", "duplicated"),
                                                     ("tamper-audit", "chain")])
def test_a_broken_guarantee_exits_1_and_names_its_thread(sabotage: str, guarantee: str) -> None:
    done = _eval(*SMALL, "--sabotage", sabotage)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    [thread] = re.findall(r"^note: sabotage: .*?(refund-\d+)", done.stdout, flags=re.M)
    assert f"BROKEN {guarantee}: thread {thread}: " in done.stdout
    assert "broken guarantee(s)" in done.stdout.splitlines()[-1]
    kept = re.findall(r"database and records kept in (\S+)", done.stdout)
    assert kept and Path(kept[0]).is_dir()  # left for a look at what broke
    shutil.rmtree(kept[0])


@pytest.mark.parametrize(("args", "says"), [
    (["--fault-rate", "2"], "between 0 and 1"),
    (["--workflows", "refund,payroll"], "name each of refund, access, close, research"),
    (["--runs", "0"], "--runs"),
    (["--html", "/no/such/dir/x.html"], "names no file in an existing directory"),
    (["--db", "postgresql://nobody@127.0.0.1:1/none"], "error:"),
])
def test_what_cannot_run_exits_2(args: list[str], says: str) -> None:
    done = _eval(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
