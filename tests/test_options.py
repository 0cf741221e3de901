"""steward.open's options: declared once (RuntimeOptions), checked once, before any database
is touched, with errors that name the option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import steward
from steward.options import RuntimeOptions, settle


@pytest.mark.parametrize(("options", "says"), [
    ({"thread_role": {"ops": "admin"}}, "unknown option ['thread_role']"),
    ({"pool_size": 0}, "pool_size must be a whole number"),
    ({"pool_size": True}, "pool_size must be a whole number"),
    ({"lease_ttl": 0}, "lease_ttl must be a positive number"),
    ({"default_ttl": -1}, "default_ttl must be a positive number"),
    ({"approval_expires_in": "soon"}, "approval_expires_in must be a positive number"),
    ({"prices": {"m": (1,)}}, "prices= maps a model name"),
    ({"memory": {"purposes": {}}}, "memory= takes a steward.MemoryRules"),
    ({"redactor": "all"}, "redactor= takes a steward.Redactor"),
    ({"policy": "permit(principal, action, resource);"}, "policy= takes a steward.Policy"),
    ({"thread_roles": {"ops": "root"}}, "unknown access level"),
    ({"encryption_key": "short"}, "encryption"),
    ({"password": 42}, "password= takes a callable"),
])
def test_a_bad_option_is_refused_before_the_database_is_touched(
        tmp_path: Path, options: dict[str, Any], says: str) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(steward.ConfigError, match=says.replace("[", r"\[").replace("(", r"\(")):
        steward.open(f"sqlite:///{path}", **options)
    with pytest.raises(steward.ConfigError):
        steward.aopen(f"sqlite:///{path}", **options)  # the twin checks the same, at once
    assert not path.exists()


def test_every_declared_option_is_settled() -> None:
    settings = settle({"thread_roles": {"ops": "admin"}, "lease_ttl": 5, "pool_size": 3,
                       "default_ttl": 60, "approval_expires_in": 30, "verify_on_resume": False,
                       "prices": {"m": (1, 2)}, "trust_unidentified": True})
    assert (settings.lease_ttl, settings.pool_size, settings.default_ttl) == (5.0, 3, 60.0)
    assert settings.approval_expires_in == 30.0 and settings.verify_on_resume is False
    assert settings.prices == {"m": (1.0, 2.0)} and settings.access.trust_unidentified
    assert settings.access.roles and settings.cipher is None
    assert set(RuntimeOptions.__annotations__) == {
        "encryption_key", "thread_roles", "default_ttl", "lease_ttl", "pool_size", "policy",
        "redactor", "approval_expires_in", "verify_on_resume", "prices", "trust_unidentified",
        "memory", "graphs", "password"}
