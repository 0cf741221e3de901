"""LANGGRAPH_STRICT_MSGPACK=true: the saver uses self.serde and survives with_allowlist copies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys
    from dataclasses import dataclass
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    from pydantic import BaseModel

    import steward

    class Order(BaseModel):
        id: str
        amount: float

    @dataclass
    class Note:
        text: str

    class Smuggled(BaseModel):
        """Not part of any schema: strict mode must not revive it."""
        secret: str

    class State(TypedDict, total=False):
        order: Order
        note: Note
        extra: object

    def node(state: State) -> State:
        return {"note": Note("checked"), "extra": Smuggled(secret="x")}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    with steward.open(sys.argv[1]) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        assert graph.checkpointer is not rt.checkpointer, "compile did not derive an allowlist"
        assert graph.checkpointer.threads is rt.checkpointer.threads
        cfg = rt.config("S1", {"id": "alice", "tenant": "acme"})
        graph.invoke({"order": Order(id="98765", amount=120.0)}, cfg)
        values = graph.get_state(cfg).values
        assert values["order"] == Order(id="98765", amount=120.0), values
        assert values["note"] == Note("checked"), values
        assert not isinstance(values["extra"], Smuggled), values["extra"]
    print("strict ok")
''')


def test_strict_msgpack_round_trips_schema_types_and_blocks_others(db_url: str) -> None:
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", SCRIPT, db_url], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "strict ok" in done.stdout
