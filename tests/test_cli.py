"""The operator's ``steward`` commands against real databases (issue #7, the CLI part)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from steward.cli import app

RUNNER = CliRunner()
ALICE, BOB, CAROL, MALLORY = ("acme/alice:support", "acme/bob:manager", "acme/carol:auditor",
                              "globex/mallory:manager")


def _run(db: str, *args: str) -> Any:
    result = RUNNER.invoke(app, [*args, "--db", db, "--json"], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200",
           "STEWARD_DB": db}
    return subprocess.run([sys.executable, "-m", "steward.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_run_list_approve_show_history_and_audit(db_url: str, tmp_path: Any) -> None:
    started = _run(db_url, "run", "refund", "--as", ALICE, "--input",
                   '{"order_id": "98765", "amount": "120.00"}')
    thread = started["thread_id"]
    assert started["status"] == "waiting"
    [request] = started["waiting_on"]
    assert request["required_roles"] == ["manager"]
    threads = _run(db_url, "threads", "list", "--as", BOB, "--status", "interrupted")
    assert [t["thread_id"] for t in threads] == [thread]
    assert _run(db_url, "threads", "list", "--as", MALLORY) == []
    pending = _run(db_url, "approvals", "list", "--as", BOB)
    assert [p["id"] for p in pending] == [request["id"]]
    assert _run(db_url, "approvals", "list", "--as", ALICE) == []  # not her own request
    done = _run(db_url, "approvals", "approve", request["id"], "--as", BOB, "--comment", "ok")
    assert done["status"] == "done" and done["values"]["receipt"].startswith("TXN-")
    shown = _run(db_url, "threads", "show", thread, "--as", CAROL)
    assert shown["owner"] == "alice" and shown["values"]["approved_by"] == "bob"
    assert [a["status"] for a in shown["approvals"]] == ["approved"]
    history = _run(db_url, "threads", "history", thread, "--as", ALICE)
    assert history[0]["written_by"] == "bob" and history[-1]["source"] == "input"
    result = RUNNER.invoke(app, ["audit", "tail", thread, "--as", ALICE, "--db", db_url,
                                 "--json"])
    events = [json.loads(line) for line in result.output.splitlines()]
    assert events[-1]["kind"] == "run_end" and "approval_vote" in [e["kind"] for e in events]
    out = tmp_path / "audit.jsonl"
    result = RUNNER.invoke(app, ["audit", "export", "--as", ALICE, "--out", str(out), "--db",
                                 db_url])
    assert result.exit_code == 0 and out.exists()
    result = RUNNER.invoke(app, ["audit", "verify", "--file", str(out)])
    assert result.exit_code == 0 and "verified" in result.output


def test_a_rejection_from_the_cli_ends_the_request(db_url: str) -> None:
    started = _run(db_url, "run", "refund", "--as", ALICE)
    request = started["waiting_on"][0]["id"]
    done = _run(db_url, "approvals", "reject", request, "--as", BOB, "--comment", "no")
    assert done["status"] == "denied"
    shown = _run(db_url, "threads", "show", started["thread_id"], "--as", ALICE)
    assert [a["status"] for a in shown["approvals"]] == ["rejected"]


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope", "--as", ALICE], "unknown workflow 'nope'"),
    (["run", "refund", "--as", ALICE, "--input", "{bad"], "--input is not valid JSON"),
    (["run", "refund", "--as", ALICE, "--input", "[1]"], "--input must be a JSON object"),
    (["run", "refund", "--as", "bob"], "names no tenant"),
    (["threads", "show", "T-none", "--as", ALICE], "no thread 'T-none'"),
    (["approvals", "approve", "apr_none", "--as", BOB], "no open request 'apr_none'"),
    (["threads", "list", "--as", ALICE, "--thread-roles", "manager=boss"], "--thread-roles"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Any, args: list[str], message: str) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    done = _cli(db, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {message}") or message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_another_tenant_and_an_unreachable_database_are_refused(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    started = _cli(db, "run", "refund", "--as", ALICE, "--json")
    thread = json.loads(started.stdout)["thread_id"]
    done = _cli(db, "threads", "show", thread, "--as", MALLORY)
    assert done.returncode == 1 and "another tenant" in done.stderr
    done = _cli("postgresql://nobody@127.0.0.1:1/none", "threads", "list", "--as", ALICE)
    assert done.returncode == 1 and "cannot connect to PostgreSQL" in done.stderr
    done = _cli(db, "sweep", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"deleted_threads": []}


def test_an_agent_workflow_plans_with_a_model(tmp_path: Any, monkeypatch: Any) -> None:
    """--model openai:... through the real client, to the local stub of its API."""
    from _model_stub import serve

    plan = {"steps": [
        {"tool": "lookup_user", "args": {"user_id": "dana"}, "reason": "who"},
        {"tool": "grant_access", "args": {"user_id": "dana", "system": "billing",
                                          "role": "read", "days": 5}, "reason": "asked"}]}
    monkeypatch.setenv("STEWARD_DEMO_RECORDS", str(tmp_path / "records.db"))
    db = f"sqlite:///{tmp_path}/cli.db"
    with serve(plan) as stub:
        env = {"OPENAI_BASE_URL": f"{stub.url}/v1", "OPENAI_API_BASE": f"{stub.url}/v1",
               "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}
        result = RUNNER.invoke(app, ["run", "access", "--as", ALICE, "--model",
                                     "openai:gpt-4o-mini", "--input",
                                     '{"user_id": "dana", "days": 5}', "--db", db, "--json"],
                               env=env)
        assert result.exit_code == 0, result.output
        done = json.loads(result.output)
        [(_, body)] = stub.requests
    assert done["status"] == "done"
    assert [s["tool"] for s in done["values"]["plan"]] == ["lookup_user", "grant_access"]
    assert "access:" in json.dumps(body)  # the request reached the model as the goal
    refused = _cli(db, "run", "refund", "--as", ALICE, "--model", "openai:gpt-4o-mini")
    assert refused.returncode == 1 and "fixed flow" in refused.stderr


def test_erase_from_the_cli(db_url: str) -> None:
    started = _run(db_url, "run", "refund", "--as", ALICE, "--input",
                   '{"order_id": "12345", "amount": "10.00", "preference": "e-mail only"}')
    assert started["status"] == "done"
    thread = started["thread_id"]
    assert _run(db_url, "threads", "show", thread, "--as", ALICE)["subjects"] == [
        "omar.reyes@example.com"]  # the refund workflow declares its customer
    for who in (BOB, "acme/zed:intern"):  # no admin role: refused, nothing changes
        refused = _cli(db_url, "erase", "omar.reyes@example.com", "--as", who)
        assert refused.returncode == 1 and refused.stderr.startswith("error:")
        assert "--thread-roles ROLE=admin" in refused.stderr.replace("\n", " ")
        assert "Traceback" not in refused.stderr
    assert _run(db_url, "threads", "show", thread, "--as", ALICE)["values"]["customer"] == (
        "omar.reyes@example.com")
    receipt = _run(db_url, "erase", "omar.reyes@example.com", "--as", "acme/olga:ops")
    assert receipt["subject"] == "omar.reyes@example.com" and receipt["memories"] == 2
    assert receipt["threads"] == [thread] and receipt["audit_events"] > 0
    shown = _run(db_url, "threads", "show", thread, "--as", ALICE)
    assert shown["status"] == "erased" and shown["values"] == {} and shown["subjects"] == []
    again = _cli(db_url, "erase", "omar.reyes@example.com", "--as", "acme/olga:ops")
    assert again.returncode == 0 and "already erased" in again.stdout
    assert receipt["receipt_id"] in again.stdout
    nobody = _run(db_url, "erase", "alice", "--as", "acme/olga:ops")  # her thread is gone
    assert nobody["outcome"] == "nothing_to_erase" and nobody["receipt_id"] is None
    result = RUNNER.invoke(app, ["audit", "verify", "--thread", started["thread_id"], "--db",
                                 db_url])
    assert result.exit_code == 0, result.output
