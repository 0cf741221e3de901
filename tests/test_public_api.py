"""The public surface is exactly what DESIGN.md promises, and the demo works end to end."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import steward
import steward.errors

# Each public name and the module that defines it, as DESIGN.md's contract and the README name
# them; sorted as steward.__all__ is (ruff RUF022).
PUBLIC = {
    "RETRY": "steward.nodes.effects",
    "Approval": "steward.guardrails.decision",
    "ApprovalInvalid": "steward.errors",
    "AuditTampered": "steward.errors",
    "ConfigError": "steward.errors",
    "DataKeyDestroyed": "steward.errors",
    "DataKeyProvider": "steward.storage.keys",
    "Decision": "steward.guardrails.decision",
    "EffectConflict": "steward.errors",
    "EnvKey": "steward.storage.keys",
    "ErasureReceipt": "steward.memory.erase",
    "Escalate": "steward.guardrails.request",
    "FileKey": "steward.storage.keys",
    "KeyProvider": "steward.storage.keys",
    "KmsKeys": "steward.storage.kms",
    "MemoryAccessDenied": "steward.errors",
    "MemoryRefused": "steward.errors",
    "MemoryRules": "steward.memory.rules",
    "PayloadCorrupted": "steward.errors",
    "Policy": "steward.guardrails.policy",
    "PolicyDenied": "steward.errors",
    "Principal": "steward.identity",
    "Redactor": "steward.guardrails.redact",
    "Runtime": "steward.runtime",
    "StaticKey": "steward.storage.keys",
    "StewardError": "steward.errors",
    "StorageError": "steward.errors",
    "ThreadAccessDenied": "steward.errors",
    "ThreadBusy": "steward.errors",
    "TokenInvalid": "steward.errors",
    "aadd_subjects": "steward.memory.subjects",
    "add_subjects": "steward.memory.subjects",
    "aguard": "steward.guardrails.guard",
    "aopen": "steward.runtime",
    "arequest_approval": "steward.guardrails.request",
    "effect": "steward.nodes.effects",
    "guard": "steward.guardrails.guard",
    "open": "steward.runtime",
    "request_approval": "steward.guardrails.request",
}


def test_exported_names_are_exactly_the_public_api() -> None:
    assert steward.__all__ == list(PUBLIC)


@pytest.mark.parametrize("name", list(PUBLIC))
def test_each_exported_name_is_the_object_its_module_defines(name: str) -> None:
    home = importlib.import_module(PUBLIC[name])
    assert getattr(steward, name) is getattr(home, name)
    assert name in home.__all__


def test_error_hierarchy() -> None:
    errors = steward.errors
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.StewardError)
        assert name in (errors.__doc__ or ""), f"{name} missing from the hierarchy drawing"
    assert issubclass(errors.ThreadAccessDenied, PermissionError)
    assert issubclass(errors.PolicyDenied, PermissionError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ThreadBusy, RuntimeError)


def test_the_readme_demo_runs_across_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    db = f"sqlite:///{tmp_path}/demo.db"
    env["STEWARD_DEMO_LEDGER"] = str(tmp_path / "payments.db")
    done = subprocess.run([sys.executable, "-m", "steward.cli", "demo", "--db", db], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "status=interrupted" in out
    pids = {line.split("[pid ")[1].split("]")[0] for line in out.splitlines() if "[pid " in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # Bob's, killed, then a third
    assert "refunds the provider executed: 1 (TXN-" in out  # paid once across the crash
    assert "effect_replay" in out and "chain" in out
    assert "refused: principal 'mallory@globex.test'" in out
    assert "approved by bob@acme.test" in out
    assert "receipt: TXN-" in out


def test_cli_errors_are_one_line_with_exit_code_1(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "steward.cli", "demo", "--db", "mysql://u:hunter2@h/db"],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: unknown database URL scheme 'mysql'")
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
