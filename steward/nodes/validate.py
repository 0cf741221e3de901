"""The validate node: checks what a step produced and decides where the run goes next.

After each tool step: a failed attempt is retried while its error is worth retrying and
attempts remain, else the run fails with the reason recorded; a result must fit the pydantic
model declared for its tool (else it is treated as a failed attempt). When every step is done,
the business invariants run (e.g. "refund <= order total"): a violation fails the run, or, with
``escalate_to`` roles, pauses for their approval (``steward.request_approval``) and fails only
if they reject. The route is a ``Command``: back to ``act``, or to the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langgraph.graph import END
from langgraph.types import Command
from pydantic import BaseModel, ValidationError

from steward.errors import ConfigError
from steward.guardrails.request import request_approval
from steward.state import ErrorRecord, Step, WorkingContext

__all__ = ["Invariant", "Validator"]

Invariant = Callable[[WorkingContext], "str | None"]
RETRYABLE = frozenset({"timeout", "invalid_result"})  # worth another attempt


def _results(state: WorkingContext) -> dict[str, Any]:
    """Each tool's latest result, by tool name, for invariants to read."""
    return {str(s.get("tool")): s.get("result") for s in state.get("plan") or []
            if s.get("status") == "done"}


class Validator:
    def __init__(self, results: Mapping[str, type[BaseModel]] | None = None,
                 invariants: Sequence[Invariant] = (), *, max_attempts: int = 2,
                 escalate_to: Iterable[str] | None = None, act: str = "act") -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {max_attempts!r}.")
        self.results = dict(results or {})
        self.invariants = list(invariants)
        self.max_attempts = max_attempts
        self.escalate_to = sorted(escalate_to) if escalate_to else None
        self.act = act

    def _fail(self, reason: str, steps: list[Step], errors: list[ErrorRecord]) -> Command[Any]:
        return Command(goto=END, update={
            "plan": steps, "errors": errors,
            "outcome": {"status": "failed", "reason": reason, "at": time.time()}})

    def __call__(self, state: WorkingContext) -> Command[Any]:
        plan = state.get("plan") or []
        checked: list[Step] = []  # steps found good in this pass
        for step in plan:
            status, error = step.get("status", "pending"), step.get("error")
            if status == "pending" and error is not None:  # an attempt failed
                kind = error.get("type")
                if kind in RETRYABLE and int(step.get("attempts") or 0) < self.max_attempts:
                    return Command(goto=self.act, update={"plan": [
                        *checked, {"id": step["id"], "error": None}]})
                failed: Step = {"id": step["id"], "status": "failed",
                                "error": {**error, "route": "fail"}}
                return self._fail(f"step {step['id']} ({step.get('tool')}) failed: "
                                  f"{error.get('message')}", [*checked, failed], [])
            if status == "done" and not step.get("validated"):
                problem = self._check_result(step)
                if problem is not None:
                    retry = int(step.get("attempts") or 0) < self.max_attempts
                    problem["route"] = "retry" if retry else "fail"
                    again: Step = {"id": step["id"], "status": "pending" if retry else "failed",
                                   "error": None if retry else problem}
                    if retry:
                        return Command(goto=self.act, update={"plan": [*checked, again],
                                                              "errors": [problem]})
                    return self._fail(str(problem.get("message")), [*checked, again],
                                      [problem])
                checked.append({"id": step["id"], "validated": True})
        if any(s.get("status", "pending") == "pending" for s in plan):
            return Command(goto=self.act, update={"plan": checked} if checked else None)
        return self._finish(state, checked)

    def _check_result(self, step: Step) -> ErrorRecord | None:
        model = self.results.get(str(step.get("tool")))
        if model is None:
            return None
        try:
            model.model_validate(step.get("result"))
        except ValidationError as exc:
            return {"type": "invalid_result", "step": step.get("id"), "tool": step.get("tool"),
                    "at": time.time(), "message": f"the result does not fit {model.__name__}: "
                                                  f"{exc.errors(include_url=False)}"}
        return None

    def _finish(self, state: WorkingContext, checked: list[Step]) -> Command[Any]:
        violations = [v for v in (check(state) for check in self.invariants) if v]
        if not violations:
            return Command(goto=END, update={"plan": checked, "outcome": {
                "status": "done", "results": _results(state), "at": time.time()}})
        records: list[ErrorRecord] = [{"type": "invariant", "message": v, "at": time.time(),
                                       "route": "escalate" if self.escalate_to else "fail"}
                                      for v in violations]
        if self.escalate_to is None:
            return self._fail("; ".join(violations), checked, records)
        approval = request_approval("override_invariants", {"violations": violations},
                                    required_roles=self.escalate_to, reason=violations)
        if approval.approved:
            return Command(goto=END, update={"plan": checked, "errors": records, "outcome": {
                "status": "done", "results": _results(state), "at": time.time(),
                "overridden": violations, "approved_by": list(approval.approvers)}})
        return self._fail(f"{'; '.join(violations)} (override {approval.decision})", checked,
                          records)
