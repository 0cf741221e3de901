"""The benchmark's scenarios. See ``bench/checkpointer.py`` for what each one measures."""

from __future__ import annotations

import contextlib
import gc
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from _common import (
    CHAIN_NODES,
    CHAIN_START,
    SIDES,
    Say,
    Side,
    approval_graph,
    chain_graph,
    chat_graph,
    config,
    median,
    message,
    order,
    percentile,
)
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.types import Command

import steward

if TYPE_CHECKING:
    from _common import Graph

WINDOW = 10  # chat turns at the start and at the end whose time is reported
LIST_LIMIT = 50  # threads per tenant-listing call
LIST_TENANT = "t7"


def _count(saver: BaseCheckpointSaver[Any], thread_ids: list[str]) -> int:
    return sum(sum(1 for _ in saver.list(config(tid))) for tid in thread_ids)


def _same_count(kind: str, counts: dict[str, int]) -> None:
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"{kind}: the savers stored different numbers of checkpoints: "
                           f"{counts}")


# -- storage floor -----------------------------------------------------------------------------


@dataclass
class FloorResult:
    seconds: list[float]  # one per commit

    @property
    def mean_us(self) -> float:
        return 1e6 * sum(self.seconds) / len(self.seconds)

    @property
    def median_us(self) -> float:
        return 1e6 * median(self.seconds)

    @property
    def per_second(self) -> float:
        return len(self.seconds) / sum(self.seconds)


FLOOR_WARMUP = 20


def sqlite_floor(path: Path, commits: int) -> FloorResult:
    """``BEGIN; UPDATE t SET v=v+1; COMMIT`` on a fresh WAL file with synchronous=FULL."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        conn.execute("INSERT INTO t VALUES (0)")
        times: list[float] = []
        for i in range(FLOOR_WARMUP + commits):
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute("UPDATE t SET v = v + 1")
            conn.execute("COMMIT")
            if i >= FLOOR_WARMUP:
                times.append(time.perf_counter() - t0)
        (value,) = conn.execute("SELECT v FROM t").fetchone()
    if value != FLOOR_WARMUP + commits:
        raise RuntimeError(f"sqlite floor: counter is {value}")
    return FloorResult(times)


def postgres_floor(url: str, commits: int) -> FloorResult:
    """Autocommit ``UPDATE t SET v = v + 1`` on a one-row table, synchronous_commit on."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE t (v integer NOT NULL)")
        conn.execute("INSERT INTO t VALUES (0)")
        times: list[float] = []
        for i in range(FLOOR_WARMUP + commits):
            t0 = time.perf_counter()
            conn.execute("UPDATE t SET v = v + 1")
            if i >= FLOOR_WARMUP:
                times.append(time.perf_counter() - t0)
        row = conn.execute("SELECT v FROM t").fetchone()
    if row is None or row[0] != FLOOR_WARMUP + commits:
        raise RuntimeError(f"postgres floor: counter is {row}")
    return FloorResult(times)


# -- chain: rounds -----------------------------------------------------------------------------


@dataclass
class ChainResult:
    invocations: int
    per_invocation: int = 0  # checkpoints one invocation stores
    rates: list[dict[str, float]] = field(default_factory=list)  # per round: side -> ckpt/s

    def median(self, side: str) -> float:
        return median([r[side] for r in self.rates])


def run_chain(sides: dict[str, Side], invocations: int, rounds: int, say: Say) -> ChainResult:
    graphs = {name: chain_graph(side.saver) for name, side in sides.items()}
    for name in order(0):  # warm-up, untimed, on its own thread
        graphs[name].invoke(CHAIN_START, config(f"warmup-{name}"), durability="sync")
    result = ChainResult(invocations)
    for r in range(rounds):
        seconds = dict.fromkeys(sides, 0.0)
        threads: dict[str, list[str]] = {name: [] for name in sides}
        gc.collect()
        for i in range(invocations):
            for name in order(r + i):
                tid = f"chain-{name}-{r}-{i}"
                t0 = time.perf_counter()
                out = graphs[name].invoke(CHAIN_START, config(tid), durability="sync")
                seconds[name] += time.perf_counter() - t0
                if out["counter"] != CHAIN_NODES:
                    raise RuntimeError(f"{name}: thread {tid} ended at {out['counter']}")
                threads[name].append(tid)
        steps = {name: _count(sides[name].saver, threads[name]) for name in sides}
        _same_count("chain", steps)
        result.per_invocation = steps["stock"] // invocations
        rates = {name: steps[name] / seconds[name] for name in sides}
        result.rates.append(rates)
        say(f"  round {r + 1}/{rounds}: stock {rates['stock']:,.0f}/s, "
            f"steward {rates['steward']:,.0f}/s")
    return result


# -- chat --------------------------------------------------------------------------------------


@dataclass
class ChatResult:
    turn_seconds: dict[str, list[float]] = field(default_factory=dict)
    db_bytes: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)

    def window_ms(self, side: str, *, last: bool) -> float:
        times = self.turn_seconds[side]
        n = min(WINDOW, len(times) // 2)
        return 1000 * median(times[-n:] if last else times[:n])

    def growth(self, side: str) -> float:
        """Median time of the last window of turns over that of the first."""
        return self.window_ms(side, last=True) / self.window_ms(side, last=False)


def run_chat(sides: dict[str, Side], turns: int,
             configs: Mapping[str, Callable[[str], RunnableConfig]] | None = None) -> ChatResult:
    """``configs``: per side, the config of a turn from the thread id (default: ``config``)."""
    graphs = {name: chat_graph(side.saver) for name, side in sides.items()}
    make = {name: (configs or {}).get(name, config) for name in sides}
    result = ChatResult(turn_seconds={name: [] for name in sides})
    gc.collect()
    for turn in range(1, turns + 1):
        update = {"messages": [message(turn)]}
        for name in order(turn):
            t0 = time.perf_counter()
            graphs[name].invoke(update, make[name](f"chat-{name}"), durability="sync")
            result.turn_seconds[name].append(time.perf_counter() - t0)
    for name, side in sides.items():
        stored = graphs[name].get_state(make[name](f"chat-{name}")).values["messages"]
        if len(stored) != turns:
            raise RuntimeError(f"{name}: chat thread holds {len(stored)} messages, not {turns}")
        result.db_bytes[name] = side.db_bytes()
        if side.table_bytes is not None:
            result.table_bytes[name] = side.table_bytes()
    return result


# -- resume ------------------------------------------------------------------------------------


@dataclass
class ResumeResult:
    paused: int
    pause_seconds: dict[str, list[float]] = field(default_factory=dict)
    resume_seconds: dict[str, list[float]] = field(default_factory=dict)

    def pause_median_ms(self, side: str) -> float:
        return 1000 * median(self.pause_seconds[side])

    def median_ms(self, side: str) -> float:
        return 1000 * median(self.resume_seconds[side])

    def p99_ms(self, side: str) -> float:
        return 1000 * percentile(self.resume_seconds[side], 99)


def run_resume(sides: dict[str, Side], paused: int, say: Say) -> ResumeResult:
    graphs = {name: approval_graph(side.saver) for name, side in sides.items()}
    result = ResumeResult(paused, {n: [] for n in sides}, {n: [] for n in sides})
    for name in order(0):  # warm-up, untimed: one pause and one resume per side
        cfg = config(f"warmup-{name}")
        graphs[name].invoke({"request": "warm-up"}, cfg, durability="sync")
        graphs[name].invoke(Command(resume="ok"), cfg, durability="sync")
    gc.collect()
    for i in range(paused):
        for name in order(i):
            tid = f"resume-{name}-{i}"
            t0 = time.perf_counter()
            out = graphs[name].invoke({"request": f"refund {i}"}, config(tid),
                                      durability="sync")
            result.pause_seconds[name].append(time.perf_counter() - t0)
            if not out.get("__interrupt__"):
                raise RuntimeError(f"{name}: thread {tid} did not stop at the interrupt: {out}")
    say(f"  {paused} threads paused per side; resuming them")
    sequence = list(range(paused))
    random.Random(2024).shuffle(sequence)  # approvals arrive in any order
    gc.collect()
    for j, i in enumerate(sequence):
        for name in order(j):
            tid = f"resume-{name}-{i}"
            t0 = time.perf_counter()
            out = graphs[name].invoke(Command(resume="ok"), config(tid), durability="sync")
            result.resume_seconds[name].append(time.perf_counter() - t0)
            if out.get("approved") != "ok" or out.get("done") is not True:
                raise RuntimeError(f"{name}: thread {tid} did not finish after resume: {out}")
    return result


# -- tenant listing ----------------------------------------------------------------------------


@dataclass
class TenantsResult:
    threads: int
    tenants: int
    put_seconds: dict[str, list[float]] = field(default_factory=dict)
    list_seconds: dict[str, list[float]] = field(default_factory=dict)

    def put_median_ms(self, side: str) -> float:
        return 1000 * median(self.put_seconds[side])

    def list_median_ms(self, side: str) -> float:
        return 1000 * median(self.list_seconds[side])


def _put_config(name: str, tid: str, i: int, tenant: str) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": tid, "checkpoint_ns": ""}
    if name == "steward":
        conf["principal"] = {"id": f"user{i}", "tenant": tenant, "roles": ["auditor"]}
    return {"configurable": conf}


def _lister(name: str, saver: BaseCheckpointSaver[Any]) -> Callable[[], list[Any]]:
    if name == "stock":
        return lambda: list(saver.list(None, filter={"tenant": LIST_TENANT}, limit=LIST_LIMIT))
    auditor = steward.Principal(id="x", tenant=LIST_TENANT, roles=frozenset({"auditor"}))
    list_threads = cast(Any, saver).list_threads  # StewardSaver.list_threads
    return lambda: list(list_threads(auditor, limit=LIST_LIMIT))


def run_tenants(sides: dict[str, Side], threads: int, tenants: int, calls: int,
                say: Say) -> TenantsResult:
    result = TenantsResult(threads, tenants, {n: [] for n in sides}, {n: [] for n in sides})
    gc.collect()
    for i in range(threads):
        tenant = f"t{i % tenants}"
        for name in order(i):
            saver = sides[name].saver
            checkpoint = empty_checkpoint()
            version = saver.get_next_version(None, None)
            checkpoint["channel_values"] = {"counter": i}
            checkpoint["channel_versions"] = {"counter": version}
            metadata: Any = {"source": "input", "step": -1, "parents": {}, "tenant": tenant}
            t0 = time.perf_counter()
            saver.put(_put_config(name, f"tenant-thread-{i}", i, tenant), checkpoint,
                      metadata, {"counter": version})
            result.put_seconds[name].append(time.perf_counter() - t0)
        if (i + 1) % max(1, threads // 4) == 0 and i + 1 < threads:
            say(f"  {i + 1}/{threads} threads stored per side")
    expected = min(LIST_LIMIT, sum(1 for i in range(threads) if f"t{i % tenants}" == LIST_TENANT))
    listers = {name: _lister(name, side.saver) for name, side in sides.items()}
    for name in SIDES:  # warm-up, untimed
        for _ in range(3):
            listers[name]()
    gc.collect()
    for c in range(calls):
        for name in order(c):
            t0 = time.perf_counter()
            rows = listers[name]()
            result.list_seconds[name].append(time.perf_counter() - t0)
            if len(rows) != expected:
                raise RuntimeError(f"{name}: listing {LIST_TENANT} gave {len(rows)} rows, "
                                   f"expected {expected}")
    return result


# -- reference: no storage at all -------------------------------------------------------------


@dataclass
class MemoryResult:
    """LangGraph with ``InMemorySaver``: what the graphs cost with no storage behind them."""

    chain_rates: list[float]
    resume_seconds: list[float]

    @property
    def chain(self) -> float:
        return median(self.chain_rates)

    @property
    def resume_median_ms(self) -> float:
        return 1000 * median(self.resume_seconds)

    @property
    def resume_p99_ms(self) -> float:
        return 1000 * percentile(self.resume_seconds, 99)


def run_memory(invocations: int, rounds: int, paused: int, say: Say) -> MemoryResult:
    """The chain and resume scenarios with an ``InMemorySaver`` on both sides; both sides'
    samples are pooled (half as many paused threads per side, so ``paused`` in all)."""
    from langgraph.checkpoint.memory import InMemorySaver

    def sides() -> dict[str, Side]:
        return {name: Side(InMemorySaver(), lambda: 0) for name in SIDES}

    def quiet(_: str) -> None:
        pass  # "stock" and "steward" are the same saver here: no per-side progress lines

    chain = run_chain(sides(), invocations, rounds, quiet)
    resume = run_resume(sides(), max(1, paused // 2), quiet)
    result = MemoryResult([r[name] for r in chain.rates for name in SIDES],
                          [t for name in SIDES for t in resume.resume_seconds[name]])
    say(f"  chain {result.chain:,.0f} ckpt/s, resume median {result.resume_median_ms:.2f} ms, "
        f"p99 {result.resume_p99_ms:.2f} ms")
    return result


# -- workers -----------------------------------------------------------------------------------


WORKER_COUNTS = (1, 4)


@dataclass
class WorkersResult:
    invocations: int
    per_invocation: int = 0
    rates: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # ckpt/s per round

    def median(self, side: str, workers: int) -> float:
        return median(self.rates[side, workers])

    def scaling(self, side: str) -> float:
        return self.median(side, WORKER_COUNTS[-1]) / self.median(side, WORKER_COUNTS[0])


def _batch(graph: Graph, saver: BaseCheckpointSaver[Any], prefix: str, workers: int,
           invocations: int) -> tuple[float, int]:
    """``invocations`` chain runs split over ``workers`` threads; (wall seconds, checkpoints
    stored by the first thread)."""
    ids = [f"{prefix}-{j}" for j in range(invocations)]
    shares = [ids[w::workers] for w in range(workers)]
    go = threading.Event()

    def work(share: list[str]) -> None:
        go.wait()
        for tid in share:
            out = graph.invoke(CHAIN_START, config(tid), durability="sync")
            if out["counter"] != CHAIN_NODES:
                raise RuntimeError(f"thread {tid} ended at {out['counter']}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, share) for share in shares]
        time.sleep(0.01)  # let the workers reach the start line
        t0 = time.perf_counter()
        go.set()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - t0
    return elapsed, _count(saver, ids[:1])


def run_workers(sides: dict[str, Side], invocations: int, rounds: int,
                say: Say) -> WorkersResult:
    graphs = {name: chain_graph(side.saver) for name, side in sides.items()}
    for name in order(0):
        graphs[name].invoke(CHAIN_START, config(f"warmup-{name}"), durability="sync")
    result = WorkersResult(invocations,
                           rates={(n, w): [] for n in sides for w in WORKER_COUNTS})
    for r in range(rounds):
        counts: dict[str, int] = {}
        line = []
        for name in order(r):
            for workers in WORKER_COUNTS if r % 2 == 0 else WORKER_COUNTS[::-1]:
                gc.collect()
                seconds, per = _batch(graphs[name], sides[name].saver,
                                      f"workers-{name}-{workers}-{r}", workers, invocations)
                counts[f"{name}/{workers}"] = per
                rate = per * invocations / seconds
                result.rates[name, workers].append(rate)
                line.append(f"{name} x{workers} {rate:,.0f}/s")
        _same_count("workers", counts)
        result.per_invocation = next(iter(counts.values()))
        say(f"  round {r + 1}/{rounds}: " + ", ".join(line))
    return result


# -- audit: the audit handler's cost on Steward's own saver ------------------------------------


@dataclass
class AuditResult:
    """Per round: checkpoints/s with the lease alone ("plain") and with lease + audit."""

    rates: list[dict[str, float]] = field(default_factory=list)

    def median(self, side: str) -> float:
        return median([r[side] for r in self.rates])

    def ratio(self) -> float:
        return self.median("audited") / self.median("plain")


def run_audit(side: Side, invocations: int, rounds: int, say: Say) -> AuditResult:
    """The chain graph run with ``rt.config(...)``, which attaches the lease and the audit
    handler, against the same config with the audit handler taken out, interleaved."""
    saver = side.saver
    rt = side.runtime
    graph = chain_graph(saver)

    def configs(tid: str) -> dict[str, Any]:
        audited = rt.config(tid)
        plain = {**audited, "callbacks": [h for h in audited["callbacks"]
                                          if type(h).__name__ != "AuditCallbackHandler"]}
        return {"plain": plain, "audited": audited}

    names = ("plain", "audited")
    for name in names:  # warm-up
        graph.invoke(CHAIN_START, configs(f"audit-warmup-{name}")[name], durability="sync")
    result = AuditResult()
    for r in range(rounds):
        seconds = dict.fromkeys(names, 0.0)
        threads: dict[str, list[str]] = {name: [] for name in names}
        gc.collect()
        for i in range(invocations):
            for name in (names if (r + i) % 2 == 0 else names[::-1]):
                tid = f"audit-{name}-{r}-{i}"
                t0 = time.perf_counter()
                graph.invoke(CHAIN_START, configs(tid)[name], durability="sync")
                seconds[name] += time.perf_counter() - t0
                threads[name].append(tid)
        steps = {name: _count(saver, threads[name]) for name in names}
        _same_count("audit", steps)
        rates = {name: steps[name] / seconds[name] for name in names}
        result.rates.append(rates)
        say(f"  round {r + 1}/{rounds}: without audit {rates['plain']:,.0f}/s, "
            f"with {rates['audited']:,.0f}/s")
    return result
