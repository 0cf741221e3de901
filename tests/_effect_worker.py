"""A refund workflow for the effect crash test, killed with SIGKILL at chosen moments.

    python _effect_worker.py URL THREAD WORLD_FILE MARKS_FILE

The effect appends its idempotency key to WORLD_FILE (the outside world, fsync-ed); the run
appends to MARKS_FILE where it is, so that the killer can aim: "in-effect", "returned" (the
effect returned, its node still runs), "later" (a later node runs).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

from _crash_worker import run
from langgraph.graph import END, START, StateGraph

import steward

__all__ = ["ALICE", "LEASE_TTL", "build", "run"]

ALICE = {"id": "alice", "tenant": "acme", "roles": ["support"]}
LEASE_TTL = 0.5


class State(TypedDict, total=False):
    order_id: str
    receipt: str
    done: bool


def _append(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def build(checkpointer: Any, world: str, marks: str) -> Any:
    @steward.effect(name="tests.issue_refund")
    def issue_refund(order_id: str, *, idempotency_key: str) -> str:
        _append(marks, "in-effect")
        time.sleep(random.uniform(0, 0.05))
        _append(world, idempotency_key)
        time.sleep(random.uniform(0, 0.05))
        return f"refund of {order_id} under {idempotency_key}"

    def refund(state: State) -> State:
        receipt = issue_refund(state["order_id"])
        _append(marks, "returned")
        time.sleep(0.2)
        return {"receipt": receipt}

    def later(state: State) -> State:
        _append(marks, "later")
        time.sleep(0.3)
        return {"done": True}

    builder = StateGraph(State)
    builder.add_node("refund", refund)
    builder.add_node("later", later)
    builder.add_edge(START, "refund")
    builder.add_edge("refund", "later")
    builder.add_edge("later", END)
    return builder.compile(checkpointer=checkpointer)


def main() -> None:
    url, thread, world, marks = sys.argv[1:5]
    with steward.open(url, lease_ttl=LEASE_TTL) as rt:
        graph = build(rt.checkpointer, world, marks)
        run(graph, {"order_id": "98765"}, rt.config(thread, ALICE))
    Path(marks).open("a").write("finished\n")


if __name__ == "__main__":
    main()
