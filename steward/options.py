"""The options of ``steward.open`` and ``steward.aopen``, declared once and checked once.

:class:`RuntimeOptions` is what a caller may pass (``steward.open(url, **options)``, typed);
:func:`settle` checks every option before any database is touched and turns them into what
the runtime's parts are built from (:class:`Settings`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from steward.checkpointers.connect import saver_options
from steward.errors import ConfigError
from steward.guardrails.guard import policies_of
from steward.guardrails.policy import Policy
from steward.guardrails.redact import Redactor
from steward.identity import AccessRule
from steward.memory.rules import MemoryRules
from steward.storage.crypto import Cipher
from steward.storage.keys import DataKeyProvider, KeySource
from steward.storage.passwords import Password, password_option
from steward.storage.values import seconds, seconds_or_none

__all__ = ["RuntimeOptions", "Settings", "settle"]


class RuntimeOptions(TypedDict, total=False):
    """``steward.open(url, **options)``; every option is optional.

    - ``encryption_key``: encrypts checkpoints, writes, effect results and memories at rest:
      32 bytes (hex or base64), a ``KeyProvider`` (``StaticKey``, ``EnvKey``, ``FileKey``),
      a ``DataKeyProvider`` (``KmsKeys``: a data key per thread from AWS KMS), or
      ``"env:NAME"``, ``"file:PATH"``, ``"kms:KEY"``; defaults to ``$STEWARD_ENCRYPTION_KEY``.
    - ``thread_roles``: roles that reach other members' threads in the same tenant, and how
      far: ``{"manager": "write", "auditor": "read", "ops": "admin"}``. Owners have full access.
    - ``default_ttl``: seconds after which new threads expire and ``sweep()`` deletes them.
    - ``lease_ttl``: seconds a crashed run keeps a thread locked (default 30).
    - ``pool_size``: PostgreSQL connections (default 10).
    - ``password``: the PostgreSQL password apart from the URL: a str, or a callable asked
      for each new connection (an IAM token: ``steward.aws.rds_iam_password``).
    - ``policy``: a :class:`steward.Policy` (or a list; those with ``enforce=False`` run in
      shadow mode) that ``steward.guard`` checks; without one every guarded action is allowed.
    - ``redactor``: masks personal data in approval requests and audit events (default: every
      built-in detector); ``approval_expires_in``: default seconds a request stays open.
    - ``verify_on_resume``: a paused thread resumes only if its audit chain verifies (else
      AuditTampered; default on); ``prices``: per model, (input, output) price per 1,000
      tokens, for the cost of model calls in audit events.
    - ``trust_unidentified``: let requests that carry no principal through the access rule.
      Only for a host that has already confined every request to its caller's tenant, such
      as the LangGraph server with ``steward.server.auth``; never otherwise.
    - ``memory``: :class:`steward.MemoryRules` for ``rt.store`` (purposes and retention,
      refused categories, embeddings for semantic recall).
    - ``graphs``: the ``langgraph.json`` whose graphs ``rt.submit`` may name (default
      ``$STEWARD_GRAPHS``, else ``./langgraph.json``), read when a run is submitted.
    """

    encryption_key: KeySource | None
    thread_roles: Mapping[str, str] | None
    default_ttl: float | None
    lease_ttl: float
    pool_size: int
    password: str | Callable[[], str] | None
    policy: Policy | list[Policy] | None
    redactor: Redactor | None
    approval_expires_in: float | None
    verify_on_resume: bool
    prices: Mapping[str, tuple[float, float]] | None
    trust_unidentified: bool
    memory: MemoryRules | None
    graphs: str | os.PathLike[str] | None


@dataclass(frozen=True)
class Settings:
    """The options, checked, as the parts are built from them."""

    cipher: Cipher | None = None
    data_keys: DataKeyProvider | None = None
    access: AccessRule = field(default_factory=AccessRule)
    default_ttl: float | None = None
    lease_ttl: float = 30.0
    pool_size: int = 10
    password: Password | None = field(default=None, repr=False)  # may close over a secret
    policies: tuple[Policy, ...] = ()
    redactor: Redactor | None = None
    approval_expires_in: float | None = None
    verify_on_resume: bool = True
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    memory: MemoryRules = field(default_factory=MemoryRules)
    graphs: str | None = None


def settle(options: Mapping[str, Any]) -> Settings:
    """Check every option (ConfigError naming the first wrong one) and build the settings."""
    unknown = sorted(set(options) - set(RuntimeOptions.__annotations__))
    if unknown:
        raise ConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} {unknown} for "
                          f"steward.open: use {sorted(RuntimeOptions.__annotations__)}.")
    saver = saver_options(encryption_key=options.get("encryption_key"),
                          thread_roles=options.get("thread_roles"),
                          trust_unidentified=bool(options.get("trust_unidentified")))
    memory = options.get("memory")
    if memory is not None and not isinstance(memory, MemoryRules):
        raise ConfigError(f"memory= takes a steward.MemoryRules, got {type(memory).__name__}.")
    redactor = options.get("redactor")
    if redactor is not None and not isinstance(redactor, Redactor):
        raise ConfigError(f"redactor= takes a steward.Redactor, got {type(redactor).__name__}.")
    pool_size = options.get("pool_size", 10)
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ConfigError(f"pool_size must be a whole number >= 1, got {pool_size!r}.")
    try:
        prices = {str(k): (float(v[0]), float(v[1]))
                  for k, v in (options.get("prices") or {}).items()}
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError("prices= maps a model name to (input, output) prices per 1,000 "
                          f"tokens, e.g. {{'gpt-4o-mini': (0.00015, 0.0006)}}: {exc}.") from exc
    lease_ttl = seconds("lease_ttl", options.get("lease_ttl", 30.0))
    return Settings(
        cipher=saver["cipher"],
        data_keys=saver["data_keys"],
        access=saver["access"],
        default_ttl=seconds_or_none("default_ttl", options.get("default_ttl")),
        lease_ttl=lease_ttl,
        pool_size=pool_size,
        password=password_option(options.get("password")),
        policies=policies_of(options.get("policy")),
        redactor=redactor,
        approval_expires_in=seconds_or_none("approval_expires_in",
                                            options.get("approval_expires_in")),
        verify_on_resume=bool(options.get("verify_on_resume", True)),
        prices=prices,
        memory=memory or MemoryRules(),
        graphs=_path_or_none("graphs", options.get("graphs")),
    )


def _path_or_none(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name}= takes a path to a langgraph.json, got "
                          f"{type(value).__name__}.")
    return os.fspath(value)
