"""The graph ``bench/workers.py`` submits, named in the langgraph.json it writes.

``chain``: a StateGraph of 10 nodes in a row (``n0`` ... ``n9``), each adding 1 to
``counter``. ``n2`` calls :func:`record`, an ``@steward.effect`` standing for the outside
world: it appends ``<thread> <idempotency key> <pid>`` to ``$STEWARD_BENCH_WORLD`` (one
``write`` of one line with ``O_APPEND``, then ``fsync``), so what it did survives the SIGKILL
of its worker and can be counted per run afterwards. Nodes do no other work, so the bench
measures the runtime and the workers; two knobs, read from the environment of the worker:

- ``STEWARD_BENCH_NODE_SLEEP``: seconds every node sleeps (default 0), so that random kills
  land mid-run;
- ``STEWARD_BENCH_BLOCK``: a directory; the first time ``n5`` runs on a thread (after the
  effect) it creates ``<dir>/<thread>`` holding its pid and blocks, for the bench to SIGKILL
  it there; on the thread's next attempt the file exists and ``n5`` goes on.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

import steward

NODES = 10
EFFECT_NODE = 2
BLOCK_NODE = 5
WORLD = "STEWARD_BENCH_WORLD"
SLEEP = "STEWARD_BENCH_NODE_SLEEP"
BLOCK = "STEWARD_BENCH_BLOCK"


class State(TypedDict, total=False):
    counter: int
    receipt: str


@steward.effect(name="bench.record")
def record(thread_id: str, *, idempotency_key: str = "") -> str:
    """The outside world: one durable line per call."""
    line = f"{thread_id} {idempotency_key} {os.getpid()}\n".encode()
    fd = os.open(os.environ[WORLD], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return idempotency_key


def _block_once(thread_id: str) -> None:
    where = os.environ.get(BLOCK)
    if not where:
        return
    try:
        fd = os.open(Path(where) / thread_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # the thread's earlier attempt blocked here and was killed: go on
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)
    time.sleep(3600)  # until the bench SIGKILLs this worker


class Node:
    """Node ``index`` of the chain."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.__name__ = f"n{index}"

    def __call__(self, state: State, config: RunnableConfig) -> dict[str, Any]:
        pause = float(os.environ.get(SLEEP) or 0)
        if pause:
            time.sleep(pause)
        out: dict[str, Any] = {"counter": state.get("counter", 0) + 1}
        if self.index == EFFECT_NODE:
            out["receipt"] = record(config["configurable"]["thread_id"])
        elif self.index == BLOCK_NODE:
            _block_once(config["configurable"]["thread_id"])
        return out


builder = StateGraph(State)
_names = [f"n{i}" for i in range(NODES)]
for _i, _name in enumerate(_names):
    builder.add_node(_name, Node(_i))
builder.add_edge(START, _names[0])
for _a, _b in itertools.pairwise(_names):
    builder.add_edge(_a, _b)
builder.add_edge(_names[-1], END)
