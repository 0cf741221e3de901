"""The runtime benchmark's scenarios. See ``bench/runtime.py`` for what each one measures."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from _common import (
    CHAIN_NODES,
    CHAIN_START,
    Say,
    Side,
    chain_graph,
    config,
    flipped,
    median,
)
from _pgwire import Proxy
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Durability

import steward

if TYPE_CHECKING:
    from _common import Graph

ALICE = steward.Principal(id="alice", tenant="acme", roles={"support"})
DURABILITIES: tuple[Durability, ...] = ("sync", "exit", "async")
STEPS_PER_RUN = CHAIN_NODES + 2  # checkpoints a run of the chain stores with durability "sync"
SHORT_CHAIN = 2  # the trips scenario's other chain: per-run and per-node costs apart
MEMORY, STOCK, PLAIN, RT = "memory", "stock", "plain", "rt.config"


@dataclass
class Runner:
    """One side of a comparison: a graph on a saver, and how each of its runs is configured.

    ``durability`` goes to ``invoke``; None when the config carries it (``rt.config``)."""

    graph: Graph
    saver: BaseCheckpointSaver[Any]
    make_config: Callable[[str], RunnableConfig]
    durability: Durability | None = None
    nodes: int = CHAIN_NODES

    def _kwargs(self) -> dict[str, Any]:
        return {} if self.durability is None else {"durability": self.durability}

    def invoke(self, tid: str) -> None:
        out = self.graph.invoke(CHAIN_START, self.make_config(tid), **self._kwargs())
        self._check(out, tid)

    async def ainvoke(self, tid: str) -> None:
        out = await self.graph.ainvoke(CHAIN_START, self.make_config(tid), **self._kwargs())
        self._check(out, tid)

    def _check(self, out: Any, tid: str) -> None:
        if out["counter"] != self.nodes:
            raise RuntimeError(f"thread {tid} ended at {out['counter']}, not {self.nodes}")

    def stored(self, tids: Sequence[str]) -> int:
        """Checkpoints stored on these threads (read with the runs' own configs: Steward's
        threads run as alice belong to her tenant)."""
        return sum(sum(1 for _ in self.saver.list(self.make_config(tid))) for tid in tids)

    async def astored(self, tids: Sequence[str]) -> int:
        n = 0
        for tid in tids:
            async for _ in self.saver.alist(self.make_config(tid)):
                n += 1
        return n


def runner(name: str, side: Side, durability: Durability, nodes: int = CHAIN_NODES) -> Runner:
    """The side ``name`` of a comparison: ``rt.config`` runs go through the side's runtime,
    every other side gets a plain config and the durability as invoke's argument."""
    graph = chain_graph(side.saver, nodes)
    if name != RT:
        return Runner(graph, side.saver, config, durability, nodes)
    rt = side.runtime

    def rt_config(tid: str) -> RunnableConfig:
        return rt.config(tid, ALICE, durability=durability)  # type: ignore[no-any-return]

    return Runner(graph, side.saver, rt_config, None, nodes)


def _same(kind: str, counts: Mapping[str, int]) -> int:
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"{kind}: the sides stored different numbers of checkpoints: "
                           f"{dict(counts)}")
    return next(iter(counts.values()))


# -- steps: the chain, every side interleaved ---------------------------------------------------


@dataclass
class StepsResult:
    durability: str
    stored_per_run: int = 0  # checkpoints a run stores with this durability (every side)
    rates: list[dict[str, float]] = field(default_factory=list)  # per round: side -> steps/s

    def median(self, side: str) -> float:
        return median([r[side] for r in self.rates])

    def ratio(self, side: str, over: str = STOCK) -> float:
        return self.median(side) / self.median(over)


def run_steps(sides: Mapping[str, Side], durability: Durability, invocations: int,
              rounds: int, say: Say) -> StepsResult:
    runners = {name: runner(name, side, durability) for name, side in sides.items()}
    names = tuple(runners)
    for name in names:  # warm-up, untimed, on its own thread
        runners[name].invoke(f"warmup-{name}")
    result = StepsResult(durability)
    for r in range(rounds):
        seconds = dict.fromkeys(names, 0.0)
        threads: dict[str, list[str]] = {name: [] for name in names}
        gc.collect()
        for i in range(invocations):
            for name in flipped(names, r + i):
                tid = f"steps-{name}-{r}-{i}"
                t0 = time.perf_counter()
                runners[name].invoke(tid)
                seconds[name] += time.perf_counter() - t0
                threads[name].append(tid)
        stored = _same(f"steps ({durability})",
                       {name: runners[name].stored(threads[name]) for name in names})
        result.stored_per_run = stored // invocations
        if durability == "sync" and result.stored_per_run != STEPS_PER_RUN:
            raise RuntimeError(f"a sync run stored {result.stored_per_run} checkpoints, "
                               f"not {STEPS_PER_RUN}")
        rates = {name: STEPS_PER_RUN * invocations / seconds[name] for name in names}
        result.rates.append(rates)
        say(f"  {durability} round {r + 1}/{rounds}: "
            + ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items()))
    return result


# -- concurrent: async runs on one event loop (PostgreSQL) --------------------------------------


@dataclass
class ConcurrentResult:
    concurrency: int
    batches: int
    rates: dict[str, list[float]] = field(default_factory=dict)  # side -> steps/s per round

    def median(self, side: str) -> float:
        return median(self.rates[side])

    def ratio(self, side: str) -> float:
        return self.median(side) / self.median(STOCK)


async def _concurrent(urls: Mapping[str, str], n: int, batches: int, rounds: int,
                      say: Say) -> ConcurrentResult:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with contextlib.AsyncExitStack() as stack:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            urls[STOCK], min_size=n, max_size=n, open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
        await pool.open(wait=True, timeout=30)
        stack.push_async_callback(pool.close)
        stock = AsyncPostgresSaver(conn=pool)
        await stock.setup()
        plain = await stack.enter_async_context(steward.aopen(urls[PLAIN], pool_size=n))
        rt = await stack.enter_async_context(steward.aopen(urls[RT], pool_size=n))
        runners = {STOCK: runner(STOCK, Side(stock, lambda: 0), "sync"),
                   PLAIN: runner(PLAIN, Side(plain.checkpointer, lambda: 0), "sync"),
                   RT: runner(RT, Side(rt.checkpointer, lambda: 0, runtime=rt), "sync")}
        for name, side in runners.items():  # warm-up, untimed: one batch each
            await asyncio.gather(*(side.ainvoke(f"warmup-{name}-{j}") for j in range(n)))
        result = ConcurrentResult(n, batches, {name: [] for name in runners})
        for r in range(rounds):
            line = []
            for name in flipped(tuple(runners), r):
                gc.collect()
                elapsed = 0.0
                for b in range(batches):
                    tids = [f"concurrent-{name}-{r}-{b}-{j}" for j in range(n)]
                    t0 = time.perf_counter()
                    await asyncio.gather(*(runners[name].ainvoke(tid) for tid in tids))
                    elapsed += time.perf_counter() - t0
                    stored = await runners[name].astored(tids[:1])
                    if stored != STEPS_PER_RUN:
                        raise RuntimeError(f"{name}: a run stored {stored} checkpoints")
                rate = STEPS_PER_RUN * n * batches / elapsed
                result.rates[name].append(rate)
                line.append(f"{name} {rate:,.0f}/s")
            say(f"  round {r + 1}/{rounds}: " + ", ".join(line))
        return result


def run_concurrent(urls: Mapping[str, str], concurrency: int, batches: int, rounds: int,
                   say: Say) -> ConcurrentResult:
    """``urls``: a fresh database per side (stock, plain, rt.config)."""
    return asyncio.run(_concurrent(urls, concurrency, batches, rounds, say))


# -- trips: what one run exchanges with the database --------------------------------------------


Counter = Callable[[], dict[str, float]]  # cumulative counts; a run's are the difference


class PgCounter:
    """A side's traffic through its proxy (see ``_pgwire``), plus ``writes``: the transactions
    that wrote (that were given a transaction id, rolled back ones too), from
    ``txid_current()`` on an admin connection: the server's whole count, so nothing else may
    write meanwhile."""

    def __init__(self, proxy: Proxy, admin: Any) -> None:
        self.proxy, self.admin = proxy, admin
        self.reads = 0  # txid_current() takes an id itself

    def __call__(self) -> dict[str, float]:
        (xid,) = self.admin.execute("SELECT txid_current()").fetchone()
        self.reads += 1
        return {**vars(self.proxy.snapshot()), "writes": xid - self.reads}


class SqliteTrace:
    """Statements and transactions on sqlite3 connections, seen by their trace callbacks:
    ``transactions`` counts ``COMMIT``s, ``fsynced`` those that changed rows on a connection
    with ``synchronous=FULL`` (each fsyncs the WAL), ``statements`` everything else but
    ``BEGIN`` and ``ROLLBACK``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"statements": 0.0, "transactions": 0.0, "fsynced": 0.0}

    def watch(self, conn: sqlite3.Connection, *, full: bool) -> None:
        begun = [0]

        def trace(sql: str) -> None:
            word = (sql.split(None, 1) or [""])[0].upper()
            with self.lock:
                if word == "BEGIN":
                    begun[0] = conn.total_changes
                elif word in ("COMMIT", "END"):
                    self.counts["transactions"] += 1
                    if full and conn.total_changes > begun[0]:
                        self.counts["fsynced"] += 1
                elif word != "ROLLBACK":
                    self.counts["statements"] += 1

        conn.set_trace_callback(trace)

    def __call__(self) -> dict[str, float]:
        with self.lock:
            return dict(self.counts)


def sqlite_counter(name: str, side: Side) -> SqliteTrace | None:
    """Trace the side's connections: the stock saver's ``conn`` (``synchronous=FULL``);
    Steward's driver's ``conn`` (FULL) and ``fast`` (NORMAL). None if they are not there."""
    trace = SqliteTrace()
    if name == STOCK:
        conn = getattr(side.saver, "conn", None)
        if not isinstance(conn, sqlite3.Connection):
            return None
        trace.watch(conn, full=True)
        return trace
    driver = getattr(side.saver, "driver", None)
    driver = getattr(driver, "inner", driver)  # the runtime's wrapper (steward.audit.refusals)
    full, fast = getattr(driver, "conn", None), getattr(driver, "fast", None)
    if not isinstance(full, sqlite3.Connection) or not isinstance(fast, sqlite3.Connection):
        return None
    trace.watch(full, full=True)
    if fast is not full:
        trace.watch(fast, full=False)
    return trace


@dataclass
class TripsResult:
    backend: str
    runs: int
    keys: tuple[str, ...] = ()
    counts: dict[tuple[str, str, int], list[dict[str, float]]] = field(default_factory=dict)

    def at(self, side: str, durability: str, key: str, nodes: int = CHAIN_NODES) -> float:
        """Median over the runs of one count for one run of a ``nodes``-node chain."""
        return median([c[key] for c in self.counts[side, durability, nodes]])

    def per_node(self, side: str, durability: str, key: str) -> float:
        long, short = (self.at(side, durability, key, n) for n in (CHAIN_NODES, SHORT_CHAIN))
        return (long - short) / (CHAIN_NODES - SHORT_CHAIN)

    def fixed(self, side: str, durability: str, key: str) -> float:
        """The per-run part: the intercept of the line through the 2- and 10-node runs."""
        return self.at(side, durability, key, SHORT_CHAIN) \
            - SHORT_CHAIN * self.per_node(side, durability, key)

    def over(self, side: str, other: str, durability: str, key: str) -> tuple[float, float]:
        """How much more ``side`` exchanges than ``other``: per run, and per node."""
        return (self.fixed(side, durability, key) - self.fixed(other, durability, key),
                self.per_node(side, durability, key) - self.per_node(other, durability, key))


def run_trips(backend: str, sides: Mapping[str, Side], counters: Mapping[str, Counter],
              runs: int, say: Say) -> TripsResult:
    names = tuple(sides)
    result = TripsResult(backend, runs)
    for durability in DURABILITIES:
        for nodes in (SHORT_CHAIN, CHAIN_NODES):
            runners = {name: runner(name, sides[name], durability, nodes) for name in names}
            for name in names:  # warm-up, uncounted
                runners[name].invoke(f"trips-warmup-{name}-{durability}-{nodes}")
            for k in range(runs):
                for name in flipped(names, k):
                    before = counters[name]()
                    runners[name].invoke(f"trips-{name}-{durability}-{nodes}-{k}")
                    after = counters[name]()
                    result.keys = tuple(after)
                    result.counts.setdefault((name, durability, nodes), []).append(
                        {key: after[key] - before[key] for key in after})
        say(f"  {durability}: " + ", ".join(
            f"{name} {result.at(name, durability, result.keys[0]):g}" for name in names)
            + f" {result.keys[0]} per {CHAIN_NODES}-node run")
    return result


def sqlite_trips(sides: Mapping[str, Side], runs: int, say: Say) -> TripsResult | None:
    """The trips scenario on SQLite sides (stock, plain, rt.config); None if their
    connections cannot be traced."""
    counters: dict[str, Counter] = {}
    for name, side in sides.items():
        counter = sqlite_counter(name, side)
        if counter is None:
            return None
        counters[name] = counter
    return run_trips("sqlite", sides, counters, runs, say)


def postgres_trips(admin_url: str, fresh: Callable[[str, str], str],
                   openers: Mapping[str, Callable[[str], contextlib.AbstractContextManager[Side]]],
                   runs: int, say: Say) -> TripsResult:
    """The trips scenario on PostgreSQL: each side (``openers``: stock, plain, rt.config) on a
    fresh database (``fresh(scenario, side)``) reached through a proxy of its own."""
    import psycopg

    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(psycopg.connect(admin_url, autocommit=True))
        sides: dict[str, Side] = {}
        counters: dict[str, Counter] = {}
        for name, opener in openers.items():
            proxy = stack.enter_context(Proxy.to(admin_url))
            url = proxy.url(fresh("trips", name.replace(".", "_")))
            sides[name] = stack.enter_context(opener(url))
            counters[name] = PgCounter(proxy, admin)
        return run_trips("postgres", sides, counters, runs, say)
