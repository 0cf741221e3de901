"""One tool call as Steward makes it: the pieces that the tool executor (``steward.nodes.tools``)
and the middleware for LangChain agents (``steward.agents``) share, so that both check, key,
hand over and record a call alike.

- :func:`checked_args`: the arguments must fit the tool's schema (pydantic, from the tool);
  the guard and the ledger see them as the schema made them;
- :func:`approval_options`: per tool, how its approvals wait (``expires_in``, ``on_expire``);
- :func:`call_key`: the call's idempotency key, one per tool call (a plan step, or a model's
  tool call id) rather than per attempt, so that a call sent round again after a timeout
  carries the key of the one that may have gone through;
- :func:`ledgered`: the call through the effect ledger, as ``tool:<name>``, so that it acts
  at most once per call site whatever re-runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from langchain_core.tools import BaseTool
from pydantic import ValidationError

from steward.errors import ConfigError
from steward.nodes.effects import args_hash, effect

__all__ = ["approval_options", "call_key", "checked_args", "fields", "ledgered"]

F = TypeVar("F", bound=Callable[..., Any])

_APPROVAL_OPTIONS = ("expires_in", "on_expire")


def fields(schema: Any) -> list[str]:
    """The argument names of a tool schema (a pydantic model, or a JSON schema dict)."""
    if isinstance(schema, dict):
        return list(schema.get("properties", {}))
    return list(getattr(schema, "model_fields", {}) or getattr(schema, "__fields__", {}))


def checked_args(tool: BaseTool, args: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The arguments as the tool's schema validates them, or the reason they do not fit it.
    (A tool described by a JSON schema rather than a model keeps its arguments as given.)"""
    schema = tool.tool_call_schema
    given = dict(args)
    if isinstance(schema, dict):
        return given, None
    try:
        checked = schema.model_validate(given)  # type: ignore[union-attr]
    except ValidationError as exc:
        return given, (f"arguments for {tool.name!r} do not fit its schema: "
                       f"{exc.errors(include_url=False)}")
    unknown = sorted(set(given) - set(fields(schema)))
    if unknown:
        return given, f"{tool.name!r} takes no arguments {unknown}"
    return {k: v for k, v in checked.model_dump().items() if k in given}, None


def fits(tool: BaseTool) -> Callable[[dict[str, Any]], str | None]:
    """For ``guard(..., editable=fits(tool))``: an approver's edit must fit the tool's schema,
    or it is refused before it counts as a vote (the thread waits on)."""
    return lambda edited: checked_args(tool, edited)[1]


def approval_options(approvals: Mapping[str, Mapping[str, Any]] | None
                     ) -> dict[str, dict[str, Any]]:
    """Per tool, how its approvals wait: ``{"expires_in": seconds, "on_expire": Escalate(...)}``
    (what ``steward.guard`` takes), checked."""
    options = {name: dict(given) for name, given in (approvals or {}).items()}
    unknown = {k for given in options.values() for k in given} - set(_APPROVAL_OPTIONS)
    if unknown:
        raise ConfigError(f"approvals= takes expires_in and on_expire per tool, got "
                          f"{sorted(unknown)}.")
    return options


def call_key(thread_id: str, unit: object, tool: str, args: Mapping[str, Any]) -> str:
    """The idempotency key of one tool call: its thread, its unit (a plan step's id, a model's
    tool call id), the tool and its arguments."""
    raw = f"{thread_id}\x1f{unit}\x1f{tool}\x1f{args_hash((dict(args),), {})}"
    return "stw-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def ledgered(tool: str, fn: F) -> F:
    """``fn`` (sync or async) as the effect that calls ``tool``: call it with the arguments
    and ``idempotency_key=``; inside a Steward run it acts once per call site."""
    return effect(name=f"tool:{tool}")(fn)
