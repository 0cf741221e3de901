"""A separate process for crash and concurrency tests.

    python _worker.py URL THREAD_ID LEASE_TTL READY_FILE

Opens a runtime on URL and starts a run of THREAD_ID as alice whose second node writes
READY_FILE and then blocks forever, so the test can SIGKILL the process mid-run while it
holds the thread's lease.
"""

from __future__ import annotations

import operator
import sys
import time
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

import steward

ALICE = {"id": "alice", "tenant": "acme", "roles": ["support"]}


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def main() -> None:
    url, thread_id, lease_ttl, ready = sys.argv[1:5]

    def first(state: State) -> State:
        return {"items": ["first"]}

    def hang(state: State) -> State:
        Path(ready).write_text("ready")
        while True:
            time.sleep(60)

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("hang", hang)
    builder.add_edge(START, "first")
    builder.add_edge("first", "hang")
    builder.add_edge("hang", END)
    with steward.open(url, lease_ttl=float(lease_ttl)) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        graph.invoke({"items": []}, rt.config(thread_id, ALICE), durability="sync")


if __name__ == "__main__":
    main()
