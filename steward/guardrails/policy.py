"""Cedar policies, and the pure function that turns a request into a Decision.

The model a policy is written against (all names without a namespace):

- principal: ``User::"<id>"`` or ``Service::"<id>"`` with attributes ``id``, ``tenant`` and
  ``roles`` (a set of strings), and a member of ``Role::"<role>"`` for each role, so both
  ``principal.roles.contains("manager")`` and ``principal in Role::"manager"`` work;
- action: ``Action::"<name>"``, the name given to ``steward.guard`` (a tool or a step);
- resource: ``Thread::"<thread id>"`` (attributes ``tenant``, ``owner``), or the resource the
  call names, ``guard(..., resource=("Order", "98765"))``: ``Order::"98765"``, with the
  thread's ``tenant`` and the thread as its parent (``resource in Thread::"T-1"``);
- context: ``args`` (the call's arguments: ints are Longs; Decimals, floats and strings such
  as ``"120.00"`` are Cedar ``decimal``s when they fit its four fractional digits; dicts are
  records, lists sets; None is left out), ``thread`` (``id``, ``tenant``, ``owner``,
  ``metadata``), ``history`` (per action already authorized on this thread: ``count``,
  ``succeeded`` -- how many of those steps completed --, ``approved`` and ``total``, the sum
  of each numeric argument) and ``cumulative`` (each numeric argument added to its total);
  totals and cumulative values are always ``decimal``s.

So "refunds per thread add up to at most 500" is
``forbid (principal, action == Action::"issue_refund", resource)
when { context.cumulative.amount.greaterThan(decimal("500.00")) };``
and "issue_refund only after verify_order succeeded" is
``forbid (...) unless { context.history has verify_order &&
context.history.verify_order.succeeded > 0 };``.

A ``forbid`` annotated ``@approval("manager")`` (several roles comma-separated, optionally
``@quorum("2")``) means "allowed once approved": when only such forbids stop a request that
the permits allow, the decision is ``require_approval``. ``@reason("...")`` gives the text a
decision reports for a policy; ``@id("...")`` the id it reports.

A forbid that cannot be evaluated (a missing attribute, say) denies, with Cedar's error as
the reason: a guard must fail closed, where Cedar itself would skip the policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import cedarpy

from steward.errors import ConfigError
from steward.guardrails.decision import Decision
from steward.identity import Principal

__all__ = ["ActionHistory", "Policy", "PolicyRequest", "ThreadFacts", "cedar_value"]

_DECIMAL = re.compile(r"-?\d{1,15}\.\d{1,4}")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL_LIMIT = Decimal("922337203685477.5807")


@dataclass(frozen=True)
class ThreadFacts:
    id: str
    tenant: str | None = None
    owner: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionHistory:
    """What this thread already did with one action (see the module docstring)."""

    count: int = 0
    succeeded: int = 0
    approved: bool = False
    totals: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyRequest:
    principal: Principal
    action: str
    args: Mapping[str, Any]
    thread: ThreadFacts
    resource: tuple[str, str] | None = None
    history: Mapping[str, ActionHistory] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    cedar_id: str
    id: str  # what decisions report: the @id annotation, else Cedar's positional id
    effect: str
    roles: tuple[str, ...]  # @approval roles (forbid only)
    quorum: int
    reason: str | None
    line: int


def _decimal(value: Decimal) -> dict[str, Any] | None:
    """A Cedar decimal, when ``value`` fits one (four fractional digits, 64-bit range)."""
    if not value.is_finite() or abs(value) > _DECIMAL_LIMIT:
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        if value != value.quantize(Decimal("0.0001")):
            return None
        value = value.quantize(Decimal("0.0001"))
    text = f"{value:f}"
    if "." not in text:
        text += ".0"
    return {"__extn": {"fn": "decimal", "arg": text}}


def _number(value: Any) -> Decimal | None:
    """The numeric value of an argument, as the policy sees it, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        try:
            return Decimal(repr(value))
        except InvalidOperation:
            return None
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return Decimal(value)
    return None


def cedar_value(value: Any) -> Any:
    """A Python value in Cedar's JSON form; None where Cedar has no such value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _LONG_MIN <= value <= _LONG_MAX else str(value)
    if isinstance(value, (Decimal, float)) or (isinstance(value, str)
                                               and _DECIMAL.fullmatch(value)):
        number = _number(value)
        typed = _decimal(number) if number is not None else None
        return typed if typed is not None else str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): v for k, v in ((k, cedar_value(v)) for k, v in value.items())
                if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v for v in (cedar_value(item) for item in value) if v is not None]
    return str(value)


def _sum_value(total: Decimal) -> Any:
    """Totals are always decimals, whatever the arguments were: one type to compare with."""
    return _decimal(total) or str(total)


def context_of(request: PolicyRequest) -> dict[str, Any]:
    """The Cedar context of a request (see the module docstring)."""
    history: dict[str, Any] = {}
    for action, past in request.history.items():
        history[action] = {
            "count": past.count, "succeeded": past.succeeded, "approved": past.approved,
            "total": {k: _sum_value(v) for k, v in past.totals.items()},
        }
    past_totals = request.history.get(request.action, ActionHistory()).totals
    cumulative: dict[str, Any] = {}
    for name, raw in request.args.items():
        number = _number(raw)
        if number is not None:
            cumulative[str(name)] = _sum_value(past_totals.get(str(name), Decimal(0)) + number)
    thread = request.thread
    return {
        "args": cedar_value(dict(request.args)),
        "thread": cedar_value({"id": thread.id, "tenant": thread.tenant, "owner": thread.owner,
                               "metadata": dict(thread.metadata)}),
        "history": history,
        "cumulative": cumulative,
    }


def entities_of(request: PolicyRequest) -> list[dict[str, Any]]:
    p = request.principal
    kind = "Service" if p.kind == "service" else "User"
    roles = sorted(p.roles)
    thread = request.thread
    out: list[dict[str, Any]] = [
        {"uid": {"type": kind, "id": p.id},
         "attrs": {"id": p.id, "tenant": p.tenant, "roles": roles},
         "parents": [{"type": "Role", "id": r} for r in roles]},
        *({"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []} for r in roles),
        {"uid": {"type": "Thread", "id": thread.id},
         "attrs": {k: v for k, v in (("tenant", thread.tenant), ("owner", thread.owner))
                   if v is not None},
         "parents": []},
    ]
    if request.resource is not None and request.resource != ("Thread", thread.id):
        rtype, rid = request.resource
        out.append({"uid": {"type": rtype, "id": rid},
                    "attrs": {"tenant": thread.tenant} if thread.tenant is not None else {},
                    "parents": [{"type": "Thread", "id": thread.id}]})
    return out


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}  # Cedar's JSON form: any id, no quoting to get wrong


class Policy:
    """A Cedar policy set. ``enforce=False`` puts it in shadow mode: its decisions are
    recorded next to the enforced ones but never change what happens."""

    def __init__(self, text: str, *, enforce: bool = True, source: str = "policy text") -> None:
        if not isinstance(text, str):
            raise ConfigError(f"a Cedar policy must be text, got {type(text).__name__}.")
        self.text = text
        self.enforce = enforce
        self.source = source
        try:
            self._set = cedarpy.PolicySet.from_str(text)
            parsed = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            line, snippet = _error_line(text)
            raise ConfigError(
                f"{source} is not valid Cedar: {exc} (line {line}: {snippet!r}). Fix the policy "
                "and open the runtime again."
            ) from exc
        self._rules = self._read_rules(parsed)
        approval = {r.cedar_id for r in self._rules.values() if r.roles}
        self._base = (self._without(parsed, approval) if approval else self._set)

    @classmethod
    def from_cedar(cls, text: str, *, enforce: bool = True) -> Policy:
        return cls(text, enforce=enforce)

    @classmethod
    def from_file(cls, path: str | Path, *, enforce: bool = True) -> Policy:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the policy file {file}: {exc.strerror}. Check the "
                              "path.") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the policy file {file} is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start}): save it as UTF-8.") from exc
        return cls(text, enforce=enforce, source=f"policy file {file}")

    def __repr__(self) -> str:
        mode = "" if self.enforce else ", shadow"
        return f"<steward.Policy {len(self._rules)} policies{mode}>"

    @property
    def policy_ids(self) -> list[str]:
        return [r.id for r in self._rules.values()]

    def _read_rules(self, parsed: dict[str, Any]) -> dict[str, _Rule]:
        if parsed.get("templates"):
            raise ConfigError(f"{self.source} holds policy templates (?principal/?resource): "
                              "Steward evaluates static policies only; link or remove them.")
        starts = _statement_lines(self.text)
        rules: dict[str, _Rule] = {}
        for position, (cedar_id, body) in enumerate(parsed.get("staticPolicies", {}).items()):
            raw: dict[str, str | None] = body.get("annotations") or {}
            line = starts[position] if position < len(starts) else 0
            where = f"policy {raw.get('id') or cedar_id!r} (line {line}) of {self.source}"
            for name in ("approval", "quorum", "reason"):
                if name in raw and raw[name] is None:
                    raise ConfigError(f'{where}: @{name} needs a value, e.g. @{name}("...").')
            # A policy's id is what decisions and records report: a bare or empty @id would
            # silently report the positional id instead, which moves when policies are moved.
            if "id" in raw and not (raw["id"] or "").strip():
                raise ConfigError(f'{where}: @id needs a name, e.g. @id("refund-cap"), or '
                                  "leave @id out to report Cedar's positional id.")
            notes = {k: v for k, v in raw.items() if v is not None}
            roles = tuple(r.strip() for r in notes.get("approval", "").split(",") if r.strip())
            if "approval" in notes and not roles:
                raise ConfigError(f"{where}: @approval names no role; write "
                                  '@approval("manager").')
            if roles and body["effect"] != "forbid":
                raise ConfigError(f"{where}: @approval belongs on a forbid (\"forbidden unless "
                                  "approved\"), not on a permit.")
            quorum = 1
            if "quorum" in notes:
                if not roles:
                    raise ConfigError(f"{where}: @quorum needs an @approval on the same policy.")
                text = notes["quorum"].strip()
                if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
                    raise ConfigError(f"{where}: @quorum must be a whole number >= 1, got "
                                      f"{notes['quorum']!r}.")
                quorum = int(text)
            rules[cedar_id] = _Rule(cedar_id, notes.get("id", cedar_id), body["effect"], roles,
                                    quorum, notes.get("reason"), line)
        return rules

    def _without(self, parsed: dict[str, Any], drop: set[str]) -> cedarpy.PolicySet:
        kept = {k: v for k, v in parsed["staticPolicies"].items() if k not in drop}
        return cedarpy.PolicySet.from_json_str(json.dumps(
            {"staticPolicies": kept, "templates": {}, "templateLinks": []}))

    def _reason(self, cedar_id: str) -> str:
        rule = self._rules[cedar_id]
        return rule.reason or f"policy {rule.id!r} ({rule.effect}) applies"

    def evaluate(self, request: PolicyRequest, *, strict: bool = True) -> Decision:
        """The decision of this policy set alone; pure (no I/O, no clock). ``strict=False``
        skips forbids that cannot be evaluated, as Cedar does: for screening what a principal
        might do before the arguments are known (a planner's tool list), never for a guard."""
        kind = "Service" if request.principal.kind == "service" else "User"
        resource = request.resource or ("Thread", request.thread.id)
        query = {"principal": _uid(kind, request.principal.id),
                 "action": _uid("Action", request.action),
                 "resource": _uid(*resource), "context": context_of(request)}
        entities = entities_of(request)
        result = cedarpy.is_authorized(query, self._set, entities)
        failed = self._failed_forbids(result.diagnostics.errors) if strict else []
        if failed:
            return self._mark(Decision.deny(
                [f"policy {self._rules[c].id!r} could not be evaluated: {e}" for c, e in failed],
                policy_ids=[self._rules[c].id for c, _ in failed]))
        matched = [c for c in result.diagnostics.reasons if c in self._rules]
        unexplained = [str(e) for e in result.diagnostics.errors if strict
                       and not any(re.search(rf"\b{re.escape(c)}\b", str(e)) for c in self._rules)]
        if not matched and not result.allowed and unexplained:
            return self._mark(Decision.deny([f"the request could not be evaluated: {e}"
                                             for e in unexplained]))
        if result.allowed:
            return self._mark(Decision.allow(policy_ids=[self._rules[c].id for c in matched],
                                             reasons=[self._reason(c) for c in matched]))
        if not matched:
            return self._mark(Decision.deny(
                [f"no policy permits {request.action!r} for {request.principal.id!r}"]))
        asking = [c for c in matched if self._rules[c].roles]
        if len(asking) < len(matched):
            plain = [c for c in matched if not self._rules[c].roles]
            return self._mark(Decision.deny([self._reason(c) for c in plain],
                                            policy_ids=[self._rules[c].id for c in plain]))
        base = cedarpy.is_authorized(query, self._base, entities)
        if not base.allowed:
            return self._mark(Decision.deny(
                [f"no policy permits {request.action!r} for {request.principal.id!r}"]))
        return self._mark(Decision.require_approval(
            [r for c in asking for r in self._rules[c].roles],
            [self._reason(c) for c in asking],
            max(self._rules[c].quorum for c in asking),
            policy_ids=[self._rules[c].id for c in asking]
            + [self._rules[c].id for c in base.diagnostics.reasons if c in self._rules]))

    def _failed_forbids(self, errors: Sequence[Any]) -> list[tuple[str, str]]:
        out = []
        for error in errors:
            text = str(error)
            for cedar_id, rule in self._rules.items():
                if rule.effect == "forbid" and re.search(rf"\b{re.escape(cedar_id)}\b", text):
                    out.append((cedar_id, text))
                    break
        return out

    def _mark(self, decision: Decision) -> Decision:
        if self.enforce:
            return decision
        return Decision(decision.effect, decision.reasons, decision.policy_ids, decision.roles,
                        decision.quorum, enforced=False)


def _statement_lines(text: str) -> list[int]:
    """The line each policy statement starts on (its first annotation or keyword)."""
    lines, start, depth, i, n = [], None, 0, 0, len(text)
    line = 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif not ch.isspace() and start is None:
            start = line
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == ";" and depth == 0:
            if start is not None:
                lines.append(start)
            start = None
        i += 1
    return lines


def _lines_outside_strings(text: str) -> list[int]:
    """The lines at whose end no string literal is open (a prefix cut there parses as far as
    the text is valid, rather than failing on the cut string)."""
    out, inside, escaped, line = [], False, False, 1
    for ch in text + "\n":
        if ch == "\n":
            if not inside:
                out.append(line)
            line += 1
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                inside = False
        elif ch == '"':
            inside = True
    return [n for n in out if n <= len(text.splitlines())]


def _error_line(text: str) -> tuple[int, str]:
    """Where a parse error is: the first line after which Cedar's complaint is no longer
    "unexpected end of input" (the text up to it is a valid prefix)."""
    rows = text.splitlines()
    for number in _lines_outside_strings(text):
        prefix = "\n".join(rows[:number])
        try:
            cedarpy.PolicySet.from_str(prefix)
        except ValueError as exc:
            if "end of input" not in str(exc):
                return number, rows[number - 1].strip()
    return len(rows), rows[-1].strip() if rows else ""
