"""A graph whose approval runs out of time, for the timer tests (``timed`` in the
langgraph.json that ``tests/_workers.py`` writes).

``ask`` asks a manager to approve a transfer, the request expiring after
``$STEWARD_TEST_EXPIRES_IN`` seconds (default 1) and, when ``$STEWARD_TEST_ESCALATE`` is set,
escalating to directors instead of being rejected. When the node learns how the request ended
it marks ``decided <thread> <decision> <pid> <time>`` in ``$STEWARD_TEST_MARKS``; ``later``
marks ``later <thread> <pid>``.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

import steward


class State(TypedDict, total=False):
    amount: str
    decision: str
    done: bool


def _mark(line: str) -> None:
    with open(os.environ["STEWARD_TEST_MARKS"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _thread(config: RunnableConfig) -> str:
    return str(config["configurable"]["thread_id"])


def ask(state: State, config: RunnableConfig) -> State:
    on_expire: Any = (steward.Escalate(["director"]) if os.environ.get("STEWARD_TEST_ESCALATE")
                      else "reject")
    approval = steward.request_approval(
        "transfer", {"amount": state["amount"]}, required_roles=["manager"],
        reason="a transfer", expires_in=float(os.environ.get("STEWARD_TEST_EXPIRES_IN", "1")),
        on_expire=on_expire)
    _mark(f"decided {_thread(config)} {approval.decision} {os.getpid()} {time.time()}")
    return {"decision": approval.decision}


def later(state: State, config: RunnableConfig) -> State:
    _mark(f"later {_thread(config)} {os.getpid()}")
    return {"done": True}


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_node("later", later)
builder.add_edge(START, "ask")
builder.add_edge("ask", "later")
builder.add_edge("later", END)
