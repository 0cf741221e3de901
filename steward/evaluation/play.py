"""One step of a case, played as a user would, and how it ended.

The outcomes: ``ok`` (the run went on: it finished, or it waits for someone), ``refused`` (the
thread access rule or the approval rules refused the request: ThreadAccessDenied,
ApprovalInvalid; nothing changed), ``denied`` (the policy, or the approver it asked, said no:
PolicyDenied raised, or an agent's step denied), ``fault`` (an injected fault the run could not
get over by itself: the thread waits to be recovered) and ``error`` (anything else: a failure
Steward should have contained). A run that finds the thread's lease held waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

import steward
from steward.evaluation.world import CAST
from steward.nodes.tools import Retry

__all__ = ["FAULTS", "OUTCOMES", "ended", "play"]

OUTCOMES = ("ok", "refused", "denied", "fault", "error")
# What the systems of record fail with that a retry may get over (the injected faults among
# them: InjectedFault is Transient, ProviderDown a ConnectionError).
FAULTS = Retry().on
BUSY_WAIT = 30.0  # seconds a step waits for a lease another run holds


def ended(out: Any) -> tuple[str, str]:
    """How a run that returned stands: (outcome, what it says)."""
    if not isinstance(out, Mapping):
        return "ok", "done"
    if out.get("__interrupt__"):
        return "ok", "waiting"
    errors = out.get("errors") or []
    found = out.get("outcome")
    outcome: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    status = str(outcome.get("status") or out.get("status") or "done")
    if status == "failed" and any(e.get("type") == "denied" for e in errors):
        return "denied", str(outcome.get("reason") or "denied")
    return "ok", status


def play(rt: steward.Runtime, graph: Any, thread: str, who: str, action: str, payload: Any,
         *, config: RunnableConfig | None = None) -> tuple[str, str]:
    """Play ``action`` on ``thread`` as ``who`` (see the module): ``start`` (``payload``: the
    input), ``vote`` (``payload``: the resume value), ``read``, ``resume`` (``rt.resume``: a
    stalled or failed run goes on), ``continue`` (``invoke(None)``: a run whose interrupt was
    answered before it died goes on)."""
    principal = CAST[who]
    conf = config or rt.config(thread, principal)
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            if action == "read":
                graph.get_state(conf)
                return "ok", "read"
            if action == "start":
                return ended(graph.invoke(payload, conf))
            if action == "vote":
                return ended(graph.invoke(Command(resume=payload), conf))
            if action == "resume":
                return ended(rt.resume(thread, principal, graph=graph))
            if action == "continue":  # a thread whose interrupt was answered: go on
                return ended(graph.invoke(None, conf))
            raise ValueError(f"no such step action {action!r}")
        except steward.ThreadBusy as exc:
            if time.monotonic() > deadline:
                return "error", f"ThreadBusy for {BUSY_WAIT:g}s: {exc}"
            time.sleep(min(exc.expires_in or 0.2, 0.5))
        except (steward.ApprovalInvalid, steward.ThreadAccessDenied) as exc:
            return "refused", str(exc)
        except steward.PolicyDenied as exc:
            return "denied", str(exc)
        except FAULTS as exc:
            return "fault", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            return "error", f"{type(exc).__name__}: {exc}"
