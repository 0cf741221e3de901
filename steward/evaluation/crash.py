"""A step run in a process of its own that is killed (SIGKILL) at a chosen point.

``spawn(...)`` starts ``python -m steward.evaluation.crash SPEC`` (``SPEC``: the step as JSON)
and waits for it. The child opens the evaluation's runtime on the same database and systems of
record, installs a fault plan whose only fault is the crash (``steward.examples.faults``;
node starts are reported to it by a callback), and plays the step: the process dies at the
point, leaving whatever it had written -- an effect done and not recorded, a vote cast and its
run unfinished, a lease held by a dead process. A child that ends without reaching the point
prints how the step ended, as JSON, and exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from steward.evaluation.world import CAST, build_graph, open_runtime
from steward.examples import faults

__all__ = ["Spawned", "main", "spawn"]

CHILD_TIMEOUT = 120.0  # seconds a child may take


@dataclass(frozen=True)
class Spawned:
    """How a child ended: ``killed`` (the crash happened), else its ``outcome`` (the step's,
    as the parent names them) or the ``error`` it died of."""

    killed: bool
    outcome: str | None = None
    detail: str = ""
    error: str | None = None


class _NodeStarts(BaseCallbackHandler):
    """Tells the fault plan each time a node starts (a crash point ``node:<name>``)."""

    run_inline = True

    def __init__(self, plan: faults.FaultPlan) -> None:
        self.plan = plan

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        node = (metadata or {}).get("langgraph_node")
        if node and kwargs.get("name") == node:
            self.plan.point(f"node:{node}")


def spawn(spec: dict[str, Any]) -> Spawned:
    """Play a step in a child process (see the module); ``spec``: db, graph, thread, who,
    action, payload, point, down, tool_timeout."""
    try:
        done = subprocess.run([sys.executable, "-m", "steward.evaluation.crash",
                               json.dumps(spec)], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT, check=False,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return Spawned(False, error=f"the child playing the step did not end within "
                                    f"{CHILD_TIMEOUT:g}s")
    if done.returncode == -9:
        return Spawned(True)
    if done.returncode == 0:
        try:
            said = json.loads(done.stdout.strip().splitlines()[-1])
            return Spawned(False, str(said["outcome"]), str(said.get("detail", "")))
        except (ValueError, IndexError, KeyError, TypeError):
            pass
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return Spawned(False, error=f"the child exited with code {done.returncode}: "
                                f"{' / '.join(tail)}")


def main(argv: list[str]) -> int:
    from steward.evaluation.play import play  # the step, played as the parent plays it

    spec = json.loads(argv[1])
    plan = faults.FaultPlan(f"{spec['thread']}/crash", down=spec.get("down") or (),
                            crash=(spec["point"], 1))
    faults.install(plan)
    with open_runtime(spec["db"]) as rt:
        graph = build_graph(rt, spec["graph"], float(spec["tool_timeout"]))
        config = rt.config(spec["thread"], CAST[spec["who"]])
        handlers = config.get("callbacks")
        assert isinstance(handlers, list)  # rt.config's: the audit and lease handlers
        config["callbacks"] = [*handlers, _NodeStarts(plan)]
        outcome, detail = play(rt, graph, spec["thread"], spec["who"], spec["action"],
                               spec.get("payload"), config=config)
    print(json.dumps({"outcome": outcome, "detail": detail}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
