"""The AgentCore app (``steward.aws.agentcore``) as AgentCore Runtime runs it: its own process,
uvicorn on a port, the runtime on ``$STEWARD_DB``. ``python tests/_agentcore_app.py PORT GRAPH``
with GRAPH ``refund`` (the example workflow) or ``gated`` (one async node that creates
``$GATE.waiting``, then waits until the file ``$GATE`` exists, so that a test can look at
``/ping`` while a run holds its lease, or kill the process mid-run)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from steward.aws.agentcore import agentcore_app
from steward.examples import WORKFLOWS
from steward.server.runtime import options_from_env


class Gated(TypedDict, total=False):
    waited: bool


async def _wait(state: Gated) -> Gated:
    """Async, as a model call would be: the app runs async nodes too."""
    gate = os.environ["GATE"]
    await asyncio.to_thread(Path(f"{gate}.waiting").touch)  # the test knows we are here
    for _ in range(1500):  # 30 s at most
        if await asyncio.to_thread(os.path.exists, gate):
            break
        await asyncio.sleep(0.02)
    return {"waited": True}


def gated() -> StateGraph[Gated]:
    builder = StateGraph(Gated)
    builder.add_node("wait", _wait)
    builder.add_edge(START, "wait")
    builder.add_edge("wait", END)
    return builder


if __name__ == "__main__":
    port, name = int(sys.argv[1]), sys.argv[2]
    graph = WORKFLOWS["refund"].build() if name == "refund" else gated()
    app = agentcore_app(graph, url=os.environ["STEWARD_DB"], **options_from_env())
    app.run(port=port, host="127.0.0.1")
