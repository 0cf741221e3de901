"""A LangChain agent (``create_agent`` + ``GuardedToolsMiddleware``) for the crash test, killed
with SIGKILL after its tool acted.

    python _agent_worker.py URL THREAD WORLD_FILE MARKS_FILE

The refund tool appends a line to WORLD_FILE (the outside world, fsync-ed); the run appends to
MARKS_FILE where it is, so that the killer can aim: "in-effect" (the tool runs), "returned"
(the tool's call returned through Steward's middleware, and its task lingers before its writes
are saved).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _crash_worker import run
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ToolCallRequest
from langchain_core.tools import tool

import steward
from steward.agents import GuardedToolsMiddleware
from steward.examples.chat import RefundChatModel

__all__ = ["ALICE", "ASK", "LEASE_TTL", "build", "run"]

ALICE = {"id": "alice", "tenant": "acme", "roles": ["support"]}
LEASE_TTL = 0.5
ASK = {"messages": [{"type": "human", "content": "Please refund $40 for order 98765"}]}


def _append(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


class _Linger(AgentMiddleware[Any, Any, Any]):
    """Marks that the tool's call came back, then lingers: the window for the kill."""

    def __init__(self, marks: str) -> None:
        super().__init__()
        self.marks = marks

    def wrap_tool_call(self, request: ToolCallRequest,
                       handler: Callable[[ToolCallRequest], Any]) -> Any:
        result = handler(request)
        _append(self.marks, "returned")
        time.sleep(0.3)
        return result


def build(checkpointer: Any, world: str, marks: str) -> Any:
    @tool
    def refund(order_id: str, amount: str) -> str:
        """Refund an amount on an order."""
        _append(marks, "in-effect")
        _append(world, f"{order_id} {amount}")
        return f"refunded ${amount} on order {order_id}"

    return create_agent(RefundChatModel(), [refund], checkpointer=checkpointer,
                        middleware=[_Linger(marks), GuardedToolsMiddleware()])


def main() -> None:
    url, thread, world, marks = sys.argv[1:5]
    with steward.open(url, lease_ttl=LEASE_TTL) as rt:
        graph = build(rt.checkpointer, world, marks)
        run(graph, ASK, rt.config(thread, ALICE))
    Path(marks).open("a").write("finished\n")


if __name__ == "__main__":
    main()
