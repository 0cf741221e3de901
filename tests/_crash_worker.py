"""A writer for the crash test: runs rounds of a three-step graph on several threads until it
is killed (SIGKILL, at any instant). Restarted, it first finishes any interrupted round.

    python _crash_worker.py URL THREADS ROUNDS READY_FILE [DURABILITY]

It writes READY_FILE once it is about to write, so the killer can aim past the start-up.
DURABILITY is the rounds' ("sync" unless given); an interrupted round is finished "sync".
"""

from __future__ import annotations

import operator
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

import steward

ALICE = {"id": "alice", "tenant": "acme", "roles": ["support"]}


class State(TypedDict, total=False):
    round: int
    log: Annotated[list[str], operator.add]
    messages: Annotated[list[AnyMessage], add_messages]


def _step(name: str) -> Any:
    def node(state: State) -> State:
        r = state["round"]
        return {"log": [f"{name}-{r}"],
                "messages": [HumanMessage(content=f"{name}{r}" * 20, id=f"{name}-{r}")]}
    return node


def build(checkpointer: Any) -> Any:
    builder = StateGraph(State)
    for name in "abc":
        builder.add_node(name, _step(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=checkpointer)


def run(graph: Any, payload: Any, config: Any, *, durability: str = "sync",
        patience: float = 60.0) -> Any:
    """Invoke, waiting out a killed predecessor's lease (it expires after lease_ttl); a thread
    still busy after ``patience`` seconds is a failure, with the last refusal."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return graph.invoke(payload, config, durability=durability)
        except steward.ThreadBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    url, threads, rounds, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    durability = sys.argv[5] if len(sys.argv) > 5 else "sync"
    with steward.open(url, lease_ttl=0.5) as rt:
        graph = build(rt.checkpointer)
        Path(ready).write_text("ready")
        while True:
            busy = False
            for t in range(threads):
                config = rt.config(f"T{t}", ALICE)
                state = graph.get_state(config)
                # A round a kill interrupted: its thread is "stalled", and rt.resume finishes
                # it (the tasks whose writes were saved before the kill are not run again).
                if state.tasks:
                    rt.resume(f"T{t}", ALICE, graph=graph, durability="sync")
                done = len(graph.get_state(config).values.get("log", [])) // 3
                if done < rounds:
                    busy = True
                    run(graph, {"round": done}, config, durability=durability)
            if not busy:
                print("all done", flush=True)
                return


if __name__ == "__main__":
    main()
