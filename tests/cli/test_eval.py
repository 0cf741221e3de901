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
    # $STEWARD_DB is not eval's: without --db it runs on a fresh, temporary SQLite database
    assert re.search(r"^.* refund runs; on a temporary SQLite database; [\d.]+ s$", out,
                     flags=re.M), out
    assert "nowhere" not in out + done.stderr


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


EACH = "name each of refund, access, close, research at most once, separated by commas."


@pytest.mark.parametrize(("args", "says"), [
    (["--fault-rate", "2"],
     ("between 0 and 1", "error: --fault-rate is a share of calls, between 0 and 1, got 2.")),
    (["--workflows", "refund,payroll"],
     ("name each of refund, access, close, research",
      f"error: --workflows name no workflow 'payroll' (got 'refund,payroll'): {EACH}")),
    (["--workflows", "refund,refund"],
     (f"error: --workflows name 'refund' twice (got 'refund,refund'): {EACH}",)),
    (["--workflows", ""], (f"error: --workflows name none (got ''): {EACH}",)),
    (["--runs", "0"],
     ("--runs", "error: --runs is how many times each workflow runs: at least 1, got 0.")),
    (["--crashes", "-1"], ("error: --crashes counts steps killed mid-run: 0 or more, got -1.",)),
    (["--outage", "-1"], ("error: --outage counts refund runs with the payment provider down: "
                          "0 or more, got -1.",)),
    (["--sabotage", "bogus"],
     ("error: --sabotage is one of pay-twice, tamper-audit, got 'bogus'.",)),
    (["--sabotage", "pay-twice", "--workflows", "access"],
     ("error: --sabotage pay-twice needs the refund workflow: add refund to --workflows (got "
      "'access').",)),
    (["--html", "/no/such/dir/x.html"],
     ("names no file in an existing directory",
      "error: --html /no/such/dir/x.html names no file in an existing directory: there is no "
      "directory /no/such/dir: create it first.")),
    (["--html", "{tmp}"], ("error: --html {tmp} names no file in an existing directory: {tmp} "
                           "is a directory: name a file, e.g. --html {tmp}/eval.html.",)),
    (["--db", "postgresql://nobody@127.0.0.1:1/none"],
     ("error:", "error: cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/none: "
                'connection failed: connection to server at "127.0.0.1", port 1 failed')),
])
def test_what_cannot_run_exits_2(args: list[str], says: tuple[str, ...], tmp_path: Path) -> None:
    done = _eval(*(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 2, done.stdout + done.stderr
    for said in says:
        assert said.format(tmp=tmp_path) in " ".join(done.stderr.split())
    assert not done.stdout  # nothing ran: no scorecard
