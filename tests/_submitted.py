"""Graphs that the worker tests submit, named in a langgraph.json the tests write.

- ``builder``: a StateGraph (the worker compiles it on its runtime): ``refund`` calls an
  ``@steward.effect`` that appends its key to ``$STEWARD_TEST_WORLD`` (the outside world),
  marks ``returned <pid>`` in ``$STEWARD_TEST_MARKS`` and sleeps ``$STEWARD_TEST_SLEEP``
  seconds (plus ``$STEWARD_TEST_SLEEP_FIRST`` the first time: a test SIGKILLs the worker
  there); it marks ``enter``/``leave`` with its thread and time; then ``later`` marks the end.
- ``factory``: an async factory taking the run's config, returning the same graph compiled.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

import steward


class State(TypedDict, total=False):
    order_id: str
    receipt: str
    done: bool


def _append(env: str, line: str) -> None:
    with open(os.environ[env], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@steward.effect(name="tests.submitted_refund")
def issue_refund(order_id: str, *, idempotency_key: str) -> str:
    _append("STEWARD_TEST_WORLD", idempotency_key)
    return f"refund of {order_id}"


def refund(state: State, config: RunnableConfig) -> State:
    thread = config["configurable"]["thread_id"]
    _append("STEWARD_TEST_MARKS", f"enter {thread} {time.time()}")
    receipt = issue_refund(state["order_id"])
    with open(os.environ["STEWARD_TEST_MARKS"]) as marks:
        first = not any(line.startswith("returned") for line in marks)
    _append("STEWARD_TEST_MARKS", f"returned {os.getpid()}")
    time.sleep(float(os.environ.get("STEWARD_TEST_SLEEP", "0")))
    if first:
        time.sleep(float(os.environ.get("STEWARD_TEST_SLEEP_FIRST", "0")))
    _append("STEWARD_TEST_MARKS", f"leave {thread} {time.time()}")
    return {"receipt": receipt}


def later(state: State) -> State:
    _append("STEWARD_TEST_MARKS", f"later {os.getpid()}")
    return {"done": True}


builder = StateGraph(State)
builder.add_node("refund", refund)
builder.add_node("later", later)
builder.add_edge(START, "refund")
builder.add_edge("refund", "later")
builder.add_edge("later", END)


async def factory(config: Any) -> Any:
    return builder.compile()
