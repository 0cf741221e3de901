"""The operator's ``steward`` commands against real databases (issue #7, the CLI part)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from steward.cli import app
from steward.cli.options import DEFAULT_DB
from steward.identity import parse_principal

RUNNER = CliRunner()
ALICE, BOB, CAROL, MALLORY = ("acme/alice:support", "acme/bob:manager", "acme/carol:auditor",
                              "globex/mallory:manager")


def _run(db: str, *args: str) -> Any:
    result = RUNNER.invoke(app, [*args, "--db", db, "--json"], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _cli(db: str, *args: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200",
           "STEWARD_DB": db, **(env or {})}
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
    assert done["status"] == "refunded" and done["values"]["receipt"].startswith("TXN-")
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
    assert done["status"] == "denied" and "rejected by bob" in done["reason"], done["reason"]
    shown = _run(db_url, "threads", "show", started["thread_id"], "--as", ALICE)
    assert [a["status"] for a in shown["approvals"]] == ["rejected"]


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope", "--as", ALICE], "unknown workflow 'nope'"),
    (["run", "refund", "--as", ALICE, "--input", "{bad"], "--input is not valid JSON"),
    (["run", "refund", "--as", ALICE, "--input", "[1]"], "--input must be a JSON object"),
    (["run", "refund", "--as", "bob"], "names no tenant"),
    (["threads", "show", "T-none", "--as", ALICE], "no thread 'T-none'"),
    (["approvals", "approve", "apr_none", "--as", BOB], "no approval request 'apr_none'"),
    (["threads", "list", "--as", ALICE, "--thread-roles", "manager=boss"], "--thread-roles"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Any, args: list[str], message: str) -> None:
    import steward

    db = f"sqlite:///{tmp_path}/cli.db"
    steward.open(db).close()  # a database, empty
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
    assert started["status"] == "refunded"
    thread = started["thread_id"]
    assert _run(db_url, "threads", "show", thread, "--as", ALICE)["subjects"] == [
        "omar.reyes@example.com"]  # the refund workflow declares its customer
    shown = _cli(db_url, "threads", "show", thread, "--as", ALICE)
    assert "subjects: omar.reyes@example.com" in shown.stdout
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


# -- issue 13 --------------------------------------------------------------------------------


def _fails(done: subprocess.CompletedProcess[str], *messages: str) -> str:
    """A refusal: exit 1, one line on stderr starting ``error:``, naming each message."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for message in messages:
        assert message in done.stderr, done.stderr
    return done.stderr


def test_verifying_nothing_is_an_error(db_url: str, tmp_path: Any) -> None:
    """Item 3: an unknown thread, an empty or missing export, an export of nothing."""
    thread = _run(db_url, "run", "refund", "--as", ALICE)["thread_id"]
    stderr = _fails(_cli(db_url, "audit", "verify", "--thread", "T-nope"),
                    "no audit events for thread 'T-nope'", "nothing was verified")
    assert "intact" not in stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = _cli(db_url, "audit", "verify", "--file", str(empty))
    _fails(done, "holds no audit events", "nothing was verified")
    assert "verified" not in done.stdout and "intact" not in done.stdout
    _fails(_cli(db_url, "audit", "verify", "--file", str(tmp_path / "missing.jsonl")),
           "no file", "missing.jsonl")
    # an export that fails leaves nothing behind, and an earlier file as it was
    out = tmp_path / "out.jsonl"
    _fails(_cli(db_url, "audit", "export", "--as", ALICE, "--thread", "T-nope", "--out",
                str(out)), "no audit events")
    _fails(_cli(db_url, "audit", "export", "--as", MALLORY, "--thread", thread, "--out",
                str(out)), "another tenant")
    _fails(_cli(db_url, "audit", "export", "--as", "acme/dave:support", "--thread", thread,
                "--out", str(out), "--thread-roles", "manager=write"),
           "--thread-roles ROLE=read", "--as")
    assert not out.exists() and list(tmp_path.glob("*out.jsonl*")) == []
    out.write_text("earlier\n")
    _fails(_cli(db_url, "audit", "export", "--as", MALLORY, "--out", str(out)),
           "no audit events")
    assert out.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == ["out.jsonl"]
    done = _cli(db_url, "audit", "export", "--as", ALICE, "--thread", thread, "--out", str(out))
    assert done.returncode == 0, done.stderr
    done = _cli(db_url, "audit", "verify", "--file", str(out))
    assert done.returncode == 0 and f"{thread}: " in done.stdout, done.stdout + done.stderr


def test_cli_advice_names_flags_not_python_keywords(db_url: str) -> None:
    """Item 3: a principal without a granted role is told the CLI's flags."""
    thread = _run(db_url, "run", "refund", "--as", ALICE)["thread_id"]
    stderr = _fails(_cli(db_url, "threads", "show", thread, "--as", "acme/dave:support"),
                    "--thread-roles ROLE=read", "--as TENANT/ID:ROLE")
    assert "thread_roles=" not in stderr and "steward.open" not in stderr
    import steward

    with steward.open(db_url) as rt, pytest.raises(steward.ThreadAccessDenied,
                                                   match="thread_roles="):
        rt.checkpointer.thread_info(thread, parse_principal("acme/dave"))


def test_approvals_list_shows_whole_ids_and_a_prefix_is_enough(db_url: str) -> None:
    """Item 5: the id survives 80 columns; any unique prefix names a request."""
    first = _run(db_url, "run", "refund", "--as", ALICE)["waiting_on"][0]["id"]
    second = _run(db_url, "run", "refund", "--as", ALICE, "--input",
                  '{"order_id": "55555", "amount": "300.00"}')["waiting_on"][0]["id"]
    listed = _cli(db_url, "approvals", "list", "--as", BOB, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    assert first in listed.stdout and second in listed.stdout, listed.stdout
    _fails(_cli(db_url, "approvals", "approve", "apr_", "--as", BOB),
           "'apr_' names 2 open requests", first, second)
    _fails(_cli(db_url, "approvals", "approve", "apr_zz", "--as", BOB),
           "no approval request 'apr_zz'", "steward approvals list")
    prefix = next(first[:n] for n in range(5, len(first)) if not second.startswith(first[:n]))
    done = _run(db_url, "approvals", "approve", prefix, "--as", BOB)
    assert done["request"] == first and done["status"] == "refunded"
    _fails(_cli(db_url, "approvals", "approve", prefix, "--as", BOB),
           f"request {first} is already approved")


def test_audit_tail_follow_prints_what_is_there_first(tmp_path: Any) -> None:
    """Item 6: a real process, reading its stdout through a pipe as an operator's would."""
    import queue
    import threading

    db = f"sqlite:///{tmp_path}/cli.db"
    thread = _run(db, "run", "refund", "--as", ALICE)["thread_id"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    env.pop("PYTHONUNBUFFERED", None)
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen([sys.executable, "-m", "steward.cli", "audit", "tail", thread, "--as",
                           ALICE, "--db", db, "--follow", "--json"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()],
                         daemon=True).start()
        try:
            first = json.loads(lines.get(timeout=60))
            assert first["thread_id"] == thread and first["kind"] == "run_start"
            [request] = _run(db, "approvals", "list", "--as", BOB)
            _run(db, "approvals", "approve", request["id"], "--as", BOB)
            kinds = []
            while "run_end" not in kinds:  # the approval's run, as it is written
                kinds.append(json.loads(lines.get(timeout=60))["kind"])
            assert "approval_vote" in kinds
            assert proc.poll() is None  # still following
        finally:
            proc.kill()


@pytest.mark.parametrize("args", [
    ["threads", "list", "--as", ALICE],
    ["threads", "show", "T-1", "--as", ALICE],
    ["threads", "history", "T-1", "--as", ALICE],
    ["approvals", "list", "--as", BOB],
    ["approvals", "approve", "apr_1", "--as", BOB],
    ["audit", "verify", "--thread", "T-1"],
    ["audit", "tail", "T-1", "--as", ALICE],
    ["audit", "export", "--as", ALICE, "--out", "x.jsonl"],
])
def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Any,
                                                          args: list[str]) -> None:
    """Item 10: a mistyped path is refused, and stays missing."""
    path = tmp_path / "typo.db"
    args = [str(tmp_path / a) if a == "x.jsonl" else a for a in args]
    _fails(_cli(f"sqlite:///{path}", *args), f"no Steward database at {path}", "--db")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_status_is_refused(db_url: str) -> None:
    """Item 11: the CLI and the library both name the statuses there are."""
    import steward

    _run(db_url, "run", "refund", "--as", ALICE)
    _fails(_cli(db_url, "threads", "list", "--as", ALICE, "--status", "bogus"),
           "unknown status 'bogus'", "idle", "running", "interrupted", "erased")
    with steward.open(db_url) as rt, pytest.raises(steward.ConfigError, match="'bogus'"):
        rt.checkpointer.list_threads(parse_principal(ALICE), status="bogus")
    assert len(_run(db_url, "threads", "list", "--as", ALICE, "--status", "interrupted")) == 1


def test_a_refused_vote_says_why(db_url: str) -> None:
    """Item 12: four eyes, a missing role, a closed request: each says so."""
    carl = "acme/carl:support,manager"
    request = _run(db_url, "run", "refund", "--as", carl)["waiting_on"][0]["id"]
    _fails(_cli(db_url, "approvals", "approve", request, "--as", carl),
           "four-eyes rule", f"'carl' asked for request {request}",
           "cannot approve their own request")
    _fails(_cli(db_url, "approvals", "approve", request, "--as", "acme/dave:support"),
           f"request {request} needs one of the roles ['manager']", "'dave' holds ['support']",
           "--as TENANT/ID:manager")
    _fails(_cli(db_url, "approvals", "approve", request, "--as", MALLORY),
           f"no approval request {request!r}")
    _run(db_url, "approvals", "reject", request, "--as", BOB)
    _fails(_cli(db_url, "approvals", "approve", request, "--as", "acme/erin:manager"),
           f"request {request} is already rejected")


@pytest.mark.parametrize(("given", "reason"), [
    ({"order_id": "00000", "amount": "10.00"}, "no such order 00000"),
    ({"order_id": "98765", "amount": "abc"}, "amount 'abc' is not a number"),
    ({"order_id": "98765", "amount": "500.00"}, "500.00 asked, 120.00 refundable"),
])
def test_a_refund_that_cannot_be_made_says_why(tmp_path: Any, given: dict[str, str],
                                               reason: str) -> None:
    """Item 13: not ``done``, but the outcome and its reason."""
    db = f"sqlite:///{tmp_path}/cli.db"
    done = _cli(db, "run", "refund", "--as", ALICE, "--input", json.dumps(given))
    assert done.returncode == 0, done.stderr
    assert ": rejected — " in done.stdout and reason in done.stdout, done.stdout
    assert "done" not in done.stdout
    out = _run(db, "run", "refund", "--as", ALICE, "--input", json.dumps(given))
    assert out["status"] == "rejected" and reason in out["reason"]
    ok = _run(db, "run", "refund", "--as", ALICE, "--input",
              '{"order_id": "24680", "amount": "20.00"}')
    assert ok["status"] == "refunded" and ok["values"]["receipt"].startswith("TXN-")


def test_an_input_without_the_needed_fields_is_refused(tmp_path: Any) -> None:
    """Item 13: ``--input '{}'`` does not run the example order."""
    db = f"sqlite:///{tmp_path}/cli.db"
    _fails(_cli(db, "run", "refund", "--as", ALICE, "--input", "{}"),
           "the refund workflow needs order_id, amount in --input", "missing: order_id, amount")
    _fails(_cli(db, "run", "refund", "--as", ALICE, "--input", '{"order_id": "98765"}'),
           "missing: amount")
    _fails(_cli(db, "run", "access", "--as", ALICE, "--input", '{"days": 3}'),
           "missing: user_id")
    assert not (tmp_path / "cli.db").exists()


def test_messages_keep_their_brackets_and_words(tmp_path: Any) -> None:
    """Item 14: no rich markup eaten; ``rejected``; libpq's reason without stray text."""
    db = f"sqlite:///{tmp_path}/cli.db"
    _fails(_cli(db, "run", "[postgres]", "--as", ALICE), "unknown workflow '[postgres]'")
    _fails(_cli(db, "threads", "list", "--as", ALICE, "--thread-roles", "[red]=x"),
           "--thread-roles '[red]=x'")
    request = json.loads(_cli(db, "run", "refund", "--as", ALICE, "--json").stdout)
    request_id = request["waiting_on"][0]["id"]
    done = _cli(db, "approvals", "reject", request_id, "--as", BOB)
    assert done.returncode == 0 and done.stdout.startswith(f"rejected {request_id}"), done.stdout
    stderr = _fails(_cli("postgresql://nobody@127.0.0.1:1/none", "threads", "list", "--as",
                         ALICE), "cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/"
                    "none: connection failed: ", "Connection refused. Check that the server")
    assert "\t" not in stderr and "  " not in stderr and "?." not in stderr
    assert ".." not in stderr and "Is the server running" not in stderr
    stderr = _fails(_cli("postgresql://u:pw%zzs3cret@127.0.0.1:1/db", "threads", "list", "--as",
                         ALICE), "invalid percent-encoded token")
    assert "s3cret" not in stderr  # libpq echoes what it cannot parse: not the password


def test_a_token_for_the_dev_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 9: ``steward token`` mints what the server's auth reads back."""
    import time

    from steward.server.auth import principal_claims

    monkeypatch.setenv("STEWARD_JWT_SECRET", "a-secret-for-tests-32-bytes-or-more")
    result = RUNNER.invoke(app, ["token", "--as", "acme/bob@acme.test:manager,auditor"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert principal_claims(token) == {"identity": "bob@acme.test", "tenant": "acme",
                                       "roles": ["auditor", "manager"],
                                       "permissions": ["auditor", "manager"]}
    import jwt

    claims = jwt.decode(token, "a-secret-for-tests-32-bytes-or-more", algorithms=["HS256"])
    assert 3590 < claims["exp"] - time.time() <= 3600
    other = "another-secret-for-tests-32-bytes-or-more"
    result = RUNNER.invoke(app, ["token", "--as", "acme/bob", "--secret", other,
                                 "--expires-in", "60"])
    claims = jwt.decode(result.output.strip(), other, algorithms=["HS256"])
    assert claims["roles"] == [] and 50 < claims["exp"] - time.time() <= 60
    env = {k: v for k, v in os.environ.items() if k != "STEWARD_JWT_SECRET"}
    done = subprocess.run([sys.executable, "-m", "steward.cli", "token", "--as", "acme/bob"],
                          env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
                          capture_output=True, text=True, timeout=60, check=False)
    _fails(done, "no secret to sign with", "--secret", "STEWARD_JWT_SECRET")
    _fails(_cli("sqlite:///x.db", "token", "--as", "acme/bob", "--expires-in", "0"),
           "--expires-in 0", "positive")


GROUPS = ["demo", "run", "resume", "sweep", "erase", "token", "worker", "report", "eval",
          "threads", "approvals", "audit"]


def test_help_lists_every_command_group() -> None:
    done = subprocess.run([sys.executable, "-m", "steward.cli", "--help"],
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                               "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^│ ([a-z][\w-]*) {2,}", done.stdout, flags=re.M)
    assert listed == GROUPS, done.stdout  # demo-resume is the demo's own, hidden
    subcommands = {"threads": ["list", "show", "history"],
                   "approvals": ["list", "approve", "reject", "standing", "revoke"],
                   "audit": ["verify", "tail", "export"]}
    for group, names in subcommands.items():
        result = RUNNER.invoke(app, [group, "--help"], env={"COLUMNS": "200"})
        assert re.findall(r"^│ ([a-z][\w-]*) {2,}", result.output, flags=re.M) == names


def _options(group: typer.Typer, command: Any, path: str = "",
             ) -> Iterator[tuple[str, Any, typer.models.OptionInfo]]:
    """(command name, its click option, the ``typer.Option`` that declares it) for every option
    of every command of ``group`` (``command``: the click group typer built from it)."""
    for info in group.registered_commands:
        name = str(info.name)
        hints = typing.get_type_hints(info.callback, include_extras=True)
        for param in command.commands[name].params:
            if isinstance(param, typer.core.TyperOption):
                [declared] = [m for m in getattr(hints[param.name], "__metadata__", ())
                              if isinstance(m, typer.models.OptionInfo)]
                yield f"{path}{name}", param, declared
    for sub in group.registered_groups:
        yield from _options(sub.typer_instance, command.commands[sub.name], f"{path}{sub.name} ")


def test_each_option_is_defined_once() -> None:
    """A flag that several commands take is one ``typer.Option`` (steward/cli/options.py), so
    it reads the same variable, says the same and defaults the same everywhere."""
    declarations: dict[str, set[int]] = {}
    takers: dict[str, dict[str, Any]] = {}
    for name, param, declared in _options(app, typer.main.get_command(app)):
        if (name, param.opts[0]) == ("eval", "--db"):
            # steward eval fills the database it is given with its runs: without --db it
            # makes a fresh one, and it never takes $STEWARD_DB's.
            assert (param.envvar, param.default) == (None, None)
            continue
        declarations.setdefault(param.opts[0], set()).add(id(declared))
        takers.setdefault(param.opts[0], {})[name] = param
    # The one flag whose meaning is each command's own: what omitting it means differs.
    per_command = {"--thread"}
    twice = sorted(f for f, ids in declarations.items() if len(ids) > 1 and f not in per_command)
    assert not twice, f"declared more than once in steward/cli: {twice}"
    shared = {f for f, uses in takers.items() if len(uses) > 1} - per_command
    assert shared >= {"--db", "--as", "--json", "--thread-roles", "--limit", "--comment"}
    commands = {name for uses in takers.values() for name in uses}
    assert set(takers["--db"]) == commands - {"token", "eval"}  # all that open a database
    assert {(p.envvar, p.default) for p in takers["--db"].values()} == {("STEWARD_DB",
                                                                         DEFAULT_DB)}
    acting = set(takers["--as"]) - {"token"}
    assert acting and acting <= set(takers["--thread-roles"])  # acting on threads: roles apply


def test_standing_approvals_and_edits_from_the_cli(db_url: str) -> None:
    started = _run(db_url, "run", "refund", "--as", ALICE)
    thread, request = started["thread_id"], started["waiting_on"][0]["id"]
    bad = _cli(db_url, "approvals", "approve", request, "--as", BOB, "--standing", "3")
    assert bad.returncode == 1 and "--standing '3': write USES/SECONDS" in bad.stderr
    edit = _cli(db_url, "approvals", "approve", request, "--as", BOB, "--edit",
                '{"amount": "90.00"}')
    assert edit.returncode == 1 and "cannot be edited" in edit.stderr  # refund acts as asked
    assert _run(db_url, "approvals", "list", "--as", BOB)[0]["id"] == request  # still waits
    done = _run(db_url, "approvals", "approve", request, "--as", BOB, "--standing", "2/3600")
    assert done["status"] == "refunded"
    [grant] = _run(db_url, "approvals", "standing", thread, "--as", ALICE)
    assert (grant["granted_by"], grant["uses_left"], grant["action"]) == (
        "bob", 2, "issue_refund")
    revoked = _run(db_url, "approvals", "revoke", grant["id"], "--as", BOB)
    assert revoked["revoked_by"] == "bob"
    refused = _cli(db_url, "approvals", "revoke", grant["id"], "--as", MALLORY)
    assert refused.returncode == 1 and "no standing approval" in refused.stderr


def test_a_run_killed_mid_way_is_stalled_and_resumes_once(db_url: str) -> None:
    """The demo's crash: the refund went out, then the process was SIGKILLed inside the node.
    The thread says "stalled" at once, and `steward resume` finishes it without paying again."""
    from steward.examples.refund import payments

    crashed = _cli(db_url, "run", "refund", "--as", ALICE, "--thread", "R-1", "--input",
                   '{"order_id": "24680", "amount": "60.00"}',
                   env={"STEWARD_DEMO_CRASH": "after-refund"})
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL
    assert len(payments("24680")) == 1
    [stalled] = _run(db_url, "threads", "list", "--as", ALICE, "--status", "stalled")
    assert stalled["thread_id"] == "R-1" and not stalled["leased"]
    done = _run(db_url, "resume", "R-1", "--as", ALICE)
    assert done["status"] == "refunded" and done["workflow"] == "refund"
    assert len(payments("24680")) == 1  # the effect ledger: paid once
    assert _run(db_url, "threads", "show", "R-1", "--as", ALICE)["status"] == "idle"
    again = _cli(db_url, "resume", "R-1", "--as", MALLORY)
    assert again.returncode == 1 and "another tenant" in again.stderr


@pytest.mark.parametrize(("flags", "says"), [
    (["--edit", "{bad"], "--edit '{bad' is not valid JSON"),
    (["--edit", "[1]"], "--edit takes a JSON object"),
    (["--edit", '{"amount": "90.00"}', "--comment", "x"], "--edit approves other arguments"),
])
def test_a_bad_edit_from_the_cli_is_refused_and_the_thread_waits(
        db_url: str, flags: list[str], says: str) -> None:
    request = _run(db_url, "run", "refund", "--as", ALICE)["waiting_on"][0]["id"]
    refused = _cli(db_url, "approvals", "approve", request, "--as", BOB, *flags)
    assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    assert [p["id"] for p in _run(db_url, "approvals", "list", "--as", BOB)] == [request]


def test_report_from_the_cli(db_url: str, tmp_path: Any) -> None:
    """`steward report`: the scorecard as JSON, as a table, and as an HTML page."""
    started = _run(db_url, "run", "refund", "--as", ALICE)  # waits for a manager
    request = started["waiting_on"][0]["id"]
    refused = _cli(db_url, "approvals", "approve", request, "--as", ALICE)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    _run(db_url, "approvals", "approve", request, "--as", BOB, "--comment", "ok")
    _run(db_url, "run", "refund", "--as", ALICE, "--input",
         '{"order_id": "12345", "amount": "10.00"}')
    card = _run(db_url, "report", "--as", CAROL)
    assert (card["completion"]["threads"], card["completion"]["finished"]) == (2, 2)
    assert card["completion"]["outcomes"] == {"refunded": 2}
    assert card["governance"]["self_approvals_refused"] == 1
    assert card["audit"]["complete"] is True
    assert [w["workflow"] for w in card["efficiency"]["workflows"]] == ["refund"]
    page = tmp_path / "report.html"
    shown = _cli(db_url, "report", "--as", CAROL, "--workflow", "refund", "--since", "1h",
                 "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    assert "Steward scorecard — tenant acme" in shown.stdout and "complete;" in shown.stdout
    assert f"wrote the scorecard's page to {page}" in shown.stdout
    text = page.read_text()
    assert text.count("<svg") == 4 and started["thread_id"] in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.html")]


@pytest.mark.parametrize(("args", "says"), [
    (["--as", ALICE], "may not read every thread of tenant 'acme'"),
    (["--as", CAROL, "--since", "yesterday"], "--since 'yesterday' is neither a time nor"),
    (["--as", CAROL, "--until", "2026-13-01"], "--until '2026-13-01' is neither a time nor"),
    (["--as", CAROL, "--since", "1d", "--until", "2d"], "--since 1d is not before --until 2d"),
    (["--as", CAROL, "--workflow", "nope"], "no workflow 'nope' in the trail of tenant 'acme'"),
    (["--as", CAROL, "--thread", "T-none"], "no thread 'T-none' in tenant 'acme': check --thread"),
    (["--as", CAROL, "--html", "/nonexistent/r.html"],
     "--html /nonexistent/r.html names no file in an existing directory: there is no directory "
     "/nonexistent: create it first."),
    (["--as", CAROL, "--html", "/"], "--html / names no file in an existing directory: / is a "
                                     "directory: name a file, e.g. --html /report.html"),
    (["--as", CAROL, "--since", "1d", "--until", "1d"], "--since 1d is not before --until 1d: "
                                                        "the period would hold no thread"),
    (["--as", CAROL, "--since", "2026-11-02", "--until", "2026-11-01"],
     "give a --since earlier than --until"),
    (["--as", CAROL, "--workflow", ""], "--workflow must name a workflow, got ''"),
    (["--as", CAROL, "--thread", ""], "--thread must name a thread, got ''"),
])
def test_a_report_refused_says_why_in_flags(tmp_path: Any, args: list[str], says: str) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    done = _cli(db, "report", *args)
    assert done.returncode == 1, done.stdout + done.stderr  # a missing database, too:
    if "--as" in args and args[1] == ALICE:
        assert "no Steward database" in done.stderr
        _cli(db, "sweep")  # creates it
        done = _cli(db, "report", *args)
    else:
        _cli(db, "sweep")
        done = _cli(db, "report", *args)
    assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "thread_roles=" not in done.stderr  # worded with the command's flags
    assert "since=" not in done.stderr and "Traceback" not in done.stderr


def test_report_html_in_a_missing_or_a_directory_is_refused_before_reading(
        tmp_path: Any) -> None:
    """--html naming a directory, or a file in a directory that is not there, is refused before
    the database is opened (it is missing here: opening it would be the error)."""
    for html, says in ((tmp_path, f"{tmp_path} is a directory: name a file, e.g. --html "
                                  f"{tmp_path / 'report.html'}."),
                       (tmp_path / "no" / "r.html", f"--html {tmp_path / 'no' / 'r.html'} names "
                                                     "no file in an existing directory: there is "
                                                     f"no directory {tmp_path / 'no'}: create")):
        done = _cli(f"sqlite:///{tmp_path}/none.db", "report", "--as", CAROL, "--html", str(html))
        assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr
        assert says in done.stderr and "no Steward database" not in done.stderr, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing written, no database made


def _unwritable(tmp_path: Any) -> tuple[Any, Any]:
    """A directory this process may not create files in, and the --html file named in it."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked, locked / "r.html"
    if not os.path.isdir("/proc"):  # root writes in any directory of a real filesystem
        pytest.skip("running as root without /proc: no directory it may not write in")
    return None, "/proc/steward-report.html"


def test_report_html_that_cannot_be_written_is_one_line_and_leaves_nothing(
        tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    _cli(db, "sweep")
    locked, html = _unwritable(tmp_path)
    try:
        done = _cli(db, "report", "--as", CAROL, "--html", str(html))
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.startswith(f"error: cannot write the scorecard's page --html {html}: ")
        assert "; or name another file with --html." in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        if locked is not None:
            assert list(locked.iterdir()) == []  # no temporary file left
    finally:
        if locked is not None:
            locked.chmod(0o700)


def test_an_empty_report_says_so_and_claims_nothing(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    _cli(db, "sweep")
    done = _cli(db, "report", "--as", CAROL)
    assert done.returncode == 0, done.stderr
    assert "no threads in the period" in done.stdout
    assert not re.search(r"\b(complete|verified)\b", done.stdout), done.stdout
