"""How fast can any saver with Steward's guarantees be here? A ladder of minimal savers.

Run it with ``python bench/ceiling.py`` (``--no-postgres``, ``--durability``, ``--rounds``,
``--runs``, ``--pg-url``, ``--tmpdir``). For issue 17: where ``bench/runtime.py`` shows a throughput
target unmet, this says whether the target is within reach of *any* implementation of the
same guarantees on this machine, or what the guarantees cost at the least.

The 10-node chain of ``bench/runtime.py`` runs with each durability ("sync", "exit", "async"; a
new thread per run) on LangGraph's ``InMemorySaver``, the stock saver, Steward under
``rt.config``, and on a ladder of reference savers written here in the fewest statements their
level allows (no encryption, no identity checks, no deltas, no retries, nothing read back: a run
never resumes). Each rung adds one guarantee to the one below it:

rows
    A step is one transaction (SQLite: ``BEGIN IMMEDIATE`` ... ``COMMIT``, ``synchronous=FULL``;
    PostgreSQL: one autocommitted statement): the checkpoint row, with the step's task writes
    held in memory by ``put_writes`` and written with it (Steward's riding). The least a
    durable saver that keeps task writes can do: one flush per step.
+ audit
    Each node's start and end are gathered by a callback handler and written in the step's
    transaction as two rows of a sha256 hash chain (orjson, sorted keys), as Steward's audit
    trail is.
+ fence
    The step's write is fenced by the run's lease: the thread row is read (SQLite, under the
    write lock the transaction holds) or locked (PostgreSQL, ``FOR UPDATE`` in the statement)
    and the write fails unless this run holds the lease.
+ lease
    Each run takes the thread's lease on its root ``on_chain_start`` and gives it back on its
    ``on_chain_end``: two more transactions per run, not flushed (as Steward's are not). As
    Steward does, a leased run under durability "async" commits its steps without a flush,
    and its lease's release flushes them: one flush per run.

Rounds interleave the sides, the order flipping each round; reported: steps per second (12 per
run, whatever the durability, as in ``bench/runtime.py``), median of the rounds, and the ratio
to stock. The last rung is what Steward's guarantees cost at the least; the gap from it to
Steward's own side is the rest of Steward (identity and access checks, encryption, deltas,
thread status, effects and approvals' hooks, Python around them).

``--parts`` measures that gap from the top down as well: beside ``rt.config`` it runs Steward
with one of its parts taken away, each on a database of its own, and shows what each side saves
against ``rt.config`` (not things a user can turn off; the measure of what they cost):

- events: the audit handler runs, but the audit log gathers nothing (``rt.audit.record`` does
  nothing), so no event is chained or written;
- indexes: the checkpoints' two secondary indexes dropped from the database: the one on
  their metadata (``list(filter={"principal_id": ...})``; SQLite's on who wrote one,
  PostgreSQL's a GIN index on the whole metadata) and the one on their run
  (``delete_for_runs``).

Each such side is checked after it ran: no audit event stored, no such index left (and
``rt.config``'s own database has both), else the benchmark fails rather than report it."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import orjson
from _common import (
    CHAIN_START,
    chain_graph,
    config,
    postgres_server,
    stock_postgres,
    stock_sqlite,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_DURABILITY
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Durability
from rich.console import Console
from rich.table import Table

import steward

if TYPE_CHECKING:
    from _common import Graph

STEPS = 12  # checkpoints a run of the 10-node chain stores with durability "sync"
ALICE = steward.Principal(id="alice", tenant="acme", roles={"support"})
RUNGS = ("rows", "+ audit", "+ fence", "+ lease")
GENESIS = "0" * 64
DURABILITIES: tuple[Durability, ...] = ("sync", "exit", "async")


@dataclass(frozen=True)
class Level:
    audit: bool
    fence: bool
    lease: bool

    @classmethod
    def of(cls, rung: str) -> Level:
        n = RUNGS.index(rung)
        return cls(audit=n >= 1, fence=n >= 2, lease=n >= 3)


class Store:
    """What a rung does with its database: one step's write, and the lease's two (the same
    SQL on both backends, ``?`` written as the backend's ``mark``)."""

    mark = "?"

    def step(self, tid: str, holder: str | None, checkpoint: tuple[Any, ...],
             writes: Sequence[tuple[Any, ...]], audit: Sequence[tuple[Any, ...]],
             flush: bool = True) -> None:
        """One step's write; ``flush``: its commit is flushed to disk."""
        raise NotImplementedError

    def _alone(self, sql: str, params: tuple[Any, ...], flush: bool = False) -> int:
        """Run one statement in a transaction of its own, flushed only with ``flush`` (the
        lease's are not); rows changed."""
        raise NotImplementedError

    def _lease(self, sql: str, params: tuple[Any, ...], flush: bool = False) -> None:
        if self._alone(sql.replace("?", self.mark), params, flush) != 1:
            raise RuntimeError(f"lease not changed: {sql}")

    def take(self, tid: str, holder: str) -> None:
        self._lease("INSERT INTO threads VALUES (?, ?, 1) ON CONFLICT (thread_id) DO UPDATE "
                    "SET lease_owner = excluded.lease_owner, rev = threads.rev + 1 "
                    "WHERE threads.lease_owner IS NULL", (tid, holder))

    def give_back(self, tid: str, holder: str, flush: bool = False) -> None:
        self._lease("UPDATE threads SET lease_owner = NULL, rev = rev + 1 "
                    "WHERE thread_id = ? AND lease_owner = ?", (tid, holder), flush)


class Chain:
    """A thread's audit events, gathered by ``Gatherer`` and chained at each step's write."""

    def __init__(self) -> None:
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.lock = threading.Lock()

    def gather(self, tid: str, event: dict[str, Any]) -> None:
        with self.lock:
            self.pending.setdefault(tid, []).append(event)

    def rows(self, tid: str) -> list[tuple[Any, ...]]:
        with self.lock:
            events = self.pending.pop(tid, [])
            seq, prev = self.heads.get(tid, (0, GENESIS))
        out = []
        for event in events:
            seq += 1
            body = orjson.dumps({**event, "thread_id": tid, "seq": seq},
                                option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha256(prev.encode() + body).hexdigest()
            out.append((tid, seq, body.decode(), prev, digest))
            prev = digest
        with self.lock:
            self.heads[tid] = (seq, prev)
        return out


class Gatherer(BaseCallbackHandler):
    """Node starts and ends as audit events (the least of Steward's ``AuditCallbackHandler``)."""

    run_inline = True

    def __init__(self, chain: Chain, tid: str) -> None:
        self.chain, self.tid = chain, tid
        self.nodes: dict[UUID, tuple[str, float]] = {}

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *,
                       run_id: UUID, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        node = (metadata or {}).get("langgraph_node")
        if node is not None and kwargs.get("name") == node:
            now = time.time()
            self.nodes[run_id] = (node, now)
            self.chain.gather(self.tid, {"kind": "node_start", "node": node, "at": now})

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        found = self.nodes.pop(run_id, None)
        if found is not None:
            now = time.time()
            self.chain.gather(self.tid, {"kind": "node_end", "node": found[0], "at": now,
                                         "duration": now - found[1]})


class Leasing(BaseCallbackHandler):
    """The run's lease, taken at its start and given back at its end."""

    run_inline = True

    def __init__(self, store: Store, tid: str, holders: dict[str, str],
                 unflushed: set[str]) -> None:
        self.store, self.tid, self.holders, self.unflushed = store, tid, holders, unflushed

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *,
                       run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        if parent_run_id is None:
            holder = str(uuid4())
            self.store.take(self.tid, holder)
            self.holders[self.tid] = holder

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        if parent_run_id is None:  # flushed if the run left steps unflushed ("async")
            flush = self.tid in self.unflushed
            self.unflushed.discard(self.tid)
            self.store.give_back(self.tid, self.holders.pop(self.tid), flush)


class LadderSaver(BaseCheckpointSaver[int]):
    """A rung's saver: task writes held for the step's one write, which carries them, the
    step's audit rows and (fenced) the checkpoint."""

    def __init__(self, store: Store, level: Level) -> None:
        super().__init__()
        self.store, self.level = store, level
        self.chain = Chain()
        self.held: dict[str, list[tuple[Any, ...]]] = {}
        self.holders: dict[str, str] = {}
        self.unflushed: set[str] = set()  # leased runs' threads with steps not yet flushed
        self.lock = threading.Lock()

    def config(self, tid: str) -> RunnableConfig:
        callbacks: list[BaseCallbackHandler] = []
        if self.level.audit:
            callbacks.append(Gatherer(self.chain, tid))
        if self.level.lease:
            callbacks.append(Leasing(self.store, tid, self.holders, self.unflushed))
        return {"configurable": {"thread_id": tid}, "callbacks": callbacks}

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return None  # every run starts a new thread

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        conf = config["configurable"]
        tid, cid = conf["thread_id"], conf["checkpoint_id"]
        rows = [(tid, cid, task_id, idx, channel, *self.serde.dumps_typed(value), task_path)
                for idx, (channel, value) in enumerate(writes)]
        with self.lock:
            self.held.setdefault(tid, []).extend(rows)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        conf = config["configurable"]
        tid = conf["thread_id"]
        kind, blob = self.serde.dumps_typed(checkpoint)
        row = (tid, checkpoint["id"], conf.get("checkpoint_id"), kind, blob,
               orjson.dumps(metadata).decode())
        with self.lock:
            writes = self.held.pop(tid, [])
        audit = self.chain.rows(tid) if self.level.audit else []
        holder = self.holders.get(tid) if self.level.fence else None
        flush = not (self.level.lease and conf.get(CONFIG_KEY_DURABILITY) == "async")
        self.store.step(tid, holder, row, writes, audit, flush)
        if not flush:
            self.unflushed.add(tid)
        return {"configurable": {"thread_id": tid, "checkpoint_ns": "",
                                 "checkpoint_id": checkpoint["id"]}}


_TABLES = (
    "CREATE TABLE threads (thread_id TEXT PRIMARY KEY, lease_owner TEXT, rev BIGINT NOT NULL)",
    "CREATE TABLE checkpoints (thread_id TEXT, checkpoint_id TEXT, parent_id TEXT, type TEXT, "
    "checkpoint {blob}, metadata TEXT, PRIMARY KEY (thread_id, checkpoint_id))",
    "CREATE TABLE writes (thread_id TEXT, checkpoint_id TEXT, task_id TEXT, idx INTEGER, "
    "channel TEXT, type TEXT, blob {blob}, task_path TEXT, "
    "PRIMARY KEY (thread_id, checkpoint_id, task_id, idx))",
    "CREATE TABLE audit (thread_id TEXT, seq BIGINT, body TEXT, prev_hash TEXT, hash TEXT, "
    "PRIMARY KEY (thread_id, seq))",
)


class SqliteStore(Store):
    """WAL, ``synchronous=FULL`` for the steps, ``NORMAL`` (no flush) for the lease (and for
    a leased "async" run's steps, whose release is then flushed)."""

    def __init__(self, path: Path) -> None:
        self.conn = self._connect(path, "FULL")
        for ddl in _TABLES:
            self.conn.execute(ddl.format(blob="BLOB"))
        self.lazy = self._connect(path, "NORMAL")
        self.lock = threading.Lock()

    @staticmethod
    def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        return conn

    def step(self, tid: str, holder: str | None, checkpoint: tuple[Any, ...],
             writes: Sequence[tuple[Any, ...]], audit: Sequence[tuple[Any, ...]],
             flush: bool = True) -> None:
        with self.lock:
            c = self.conn if flush else self.lazy
            c.execute("BEGIN IMMEDIATE")
            try:
                if holder is not None and c.execute(
                        "SELECT 1 FROM threads WHERE thread_id = ? AND lease_owner = ?",
                        (tid, holder)).fetchone() is None:
                    raise RuntimeError(f"thread {tid}: lease lost")
                if writes:
                    c.executemany("INSERT INTO writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", writes)
                if audit:
                    c.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", audit)
                c.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)", checkpoint)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def _alone(self, sql: str, params: tuple[Any, ...], flush: bool = False) -> int:
        with self.lock:
            c = self.conn if flush else self.lazy
            c.execute("BEGIN IMMEDIATE")
            changed = c.execute(sql, params).rowcount
            c.execute("COMMIT")
        return changed

    def close(self) -> None:
        self.lazy.close()
        self.conn.close()


class PostgresStore(Store):
    """A step is one autocommitted statement (flushed); the lease's statements (and a leased
    "async" run's steps, whose release is then flushed) go on a connection whose commits do
    not wait for the flush (``synchronous_commit = off``)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        for ddl in _TABLES:
            self.conn.execute(ddl.format(blob="BYTEA"))  # type: ignore[arg-type]
        self.lazy = psycopg.connect(url, autocommit=True, options="-c synchronous_commit=off")
        self.lock = threading.Lock()

    @staticmethod
    def _sql(fence: bool, writes: bool, audit: bool) -> str:
        ok = ("(SELECT ok FROM ok) = 1" if fence else "TRUE")
        parts = []
        if fence:
            parts.append("ok AS (SELECT 1 / (SELECT count(*) FROM (SELECT 1 FROM threads "
                         "WHERE thread_id = %s AND lease_owner = %s FOR UPDATE) AS g)::int "
                         "AS ok)")
        if writes:
            parts.append("w AS (INSERT INTO writes SELECT u->>0, u->>1, u->>2, (u->>3)::int, "
                         "u->>4, u->>5, decode(u->>6, 'base64'), u->>7 "
                         f"FROM jsonb_array_elements(%s::jsonb) AS u WHERE {ok})")
        if audit:
            parts.append("a AS (INSERT INTO audit SELECT u->>0, (u->>1)::bigint, u->>2, u->>3, "
                         f"u->>4 FROM jsonb_array_elements(%s::jsonb) AS u WHERE {ok})")
        with_ = ("WITH " + ", ".join(parts) + " ") if parts else ""
        return with_ + f"INSERT INTO checkpoints SELECT %s, %s, %s, %s, %s, %s WHERE {ok}"

    def step(self, tid: str, holder: str | None, checkpoint: tuple[Any, ...],
             writes: Sequence[tuple[Any, ...]], audit: Sequence[tuple[Any, ...]],
             flush: bool = True) -> None:
        import base64

        params: list[Any] = []
        if holder is not None:
            params += [tid, holder]
        if writes:
            params.append(orjson.dumps([(*w[:6], base64.b64encode(w[6]).decode(), w[7])
                                        for w in writes]).decode())
        if audit:
            params.append(orjson.dumps(audit).decode())
        params += checkpoint
        with self.lock:
            (self.conn if flush else self.lazy).execute(
                self._sql(holder is not None, bool(writes), bool(audit)), params)

    mark = "%s"

    def _alone(self, sql: str, params: tuple[Any, ...], flush: bool = False) -> int:
        with self.lock:
            return (self.conn if flush else self.lazy).execute(  # type: ignore[arg-type]
                sql, params).rowcount

    def close(self) -> None:
        self.lazy.close()
        self.conn.close()


# -- driving -----------------------------------------------------------------------------------

Run = Callable[[str], None]


def _side(graph: Graph, make: Callable[[str], RunnableConfig],
          durability: Durability | None) -> Run:
    """``durability``: given to ``invoke``; None when the config carries it (rt.config)."""
    def run(tid: str) -> None:
        out = (graph.invoke(CHAIN_START, make(tid), durability=durability) if durability
               else graph.invoke(CHAIN_START, make(tid)))
        if out["counter"] != 10:
            raise RuntimeError(f"thread {tid} ended at {out['counter']}")
    return run


@contextlib.contextmanager
def sides(backend: str, where: Callable[[str], str], durability: Durability,
          parts: bool = False) -> Iterator[dict[str, Run]]:
    """memory, stock, the rungs and Steward's rt.config on fresh databases
    (``where(name)``: a file path on SQLite, a database URL on PostgreSQL); ``parts``: also
    Steward without each of ``PARTS``."""
    with contextlib.ExitStack() as stack:
        out: dict[str, Run] = {"memory": _side(chain_graph(InMemorySaver()), config, durability)}
        stock = stack.enter_context((stock_sqlite if backend == "sqlite" else stock_postgres)(
            where("stock")))
        out["stock"] = _side(chain_graph(stock.saver), config, durability)
        for i, rung in enumerate(RUNGS):
            store: SqliteStore | PostgresStore = (
                SqliteStore(Path(where(f"rung{i}"))) if backend == "sqlite"
                else PostgresStore(where(f"rung{i}")))
            stack.callback(store.close)
            saver = LadderSaver(store, Level.of(rung))
            out[rung] = _side(chain_graph(saver), saver.config, durability)
        def steward_side(side: str, database: str) -> steward.Runtime:
            url = f"sqlite:///{where(database)}" if backend == "sqlite" else where(database)
            rt = stack.enter_context(steward.open(url))
            out[side] = _side(chain_graph(rt.checkpointer),
                              lambda tid: rt.config(tid, ALICE, durability=durability), None)
            return rt

        full = steward_side("rt.config", "steward")
        if not parts:
            yield out
            return
        no_events = steward_side(PARTS[0], "no_events")
        no_events.audit.record = _gather_nothing  # type: ignore[method-assign]
        no_indexes = steward_side(PARTS[1], "no_indexes")
        indexes = _INDEXES[backend]
        no_indexes.checkpointer.driver.run(_drop(indexes), write=True)
        yield out
        # What each side measured is what it is named for.
        if _count(full, "SELECT count(*) FROM steward_audit") == 0 or \
                _count(no_events, "SELECT count(*) FROM steward_audit") != 0:
            raise RuntimeError("the side without events stored some, or rt.config none")
        found = _INDEX_COUNT[backend].format(", ".join(f"'{i}'" for i in indexes))
        if _count(full, found) != len(indexes) or _count(no_indexes, found) != 0:
            raise RuntimeError(f"the side without indexes kept some of {indexes}")


PARTS = ("without events", "without indexes")
_INDEXES = {"sqlite": ("steward_checkpoints_md_principal", "steward_checkpoints_run"),
            "postgres": ("steward_checkpoints_metadata", "steward_checkpoints_run")}
_INDEX_COUNT = {"sqlite": "SELECT count(*) FROM sqlite_master WHERE name IN ({})",
                "postgres": "SELECT count(*) FROM pg_indexes WHERE indexname IN ({})"}


def _gather_nothing(*args: Any, **kwargs: Any) -> None:
    """An audit log's ``record`` that gathers nothing: no event is chained or written."""


def _drop(indexes: Sequence[str]) -> Iterator[Any]:
    from steward.storage.ops import Stmt

    for index in indexes:
        yield Stmt(f"DROP INDEX {index}")


def _count(rt: steward.Runtime, sql: str) -> int:
    def op() -> Iterator[Any]:
        from steward.storage.ops import Stmt

        return int((yield Stmt(sql)).rows[0][0])
    return int(rt.checkpointer.driver.run(op(), write=False))


def measure(runs: dict[str, Run], rounds: int, per_round: int) -> dict[str, float]:
    """Steps per second per side, median of the rounds (order flipped every round)."""
    for name, run in runs.items():
        for i in range(3):
            run(f"warm-{name}-{i}")
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        names = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in names:
            started = time.perf_counter()
            for i in range(per_round):
                runs[name](f"{name}-{r}-{i}")
            rates[name].append(per_round * STEPS / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def table(backend: str, durability: str, rates: dict[str, float]) -> Table:
    stock = rates["stock"]
    out = Table(title=f"{backend}: the 10-node chain, durability {durability} "
                "(steps/s, median)")
    for column in ("side", "steps/s", "µs/step", "÷ stock", "µs/step over the rung above"):
        out.add_column(column, justify="left" if column == "side" else "right")
    previous: float | None = None
    for name, rate in rates.items():
        step = 1e6 / rate
        if name in PARTS:  # what taking the part away saves, against rt.config
            extra = f"{step - 1e6 / rates['rt.config']:+.0f} vs rt.config"
        elif previous is None or name in ("stock", "memory", "rows"):
            extra = ""
        else:
            extra = f"{step - previous:+.0f}"
        out.add_row(name, f"{rate:,.0f}", f"{step:,.0f}", f"{rate / stock:.2f}x", extra)
        if name not in ("stock", "memory", *PARTS):
            previous = step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--durability", default="sync,exit,async",
                        help="comma-separated, of: sync, exit, async")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=30, help="runs per side per round")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--parts", action="store_true",
                        help="also Steward without each of its costliest parts (see above)")
    args = parser.parse_args()
    durabilities: list[Durability] = []
    for name in args.durability.split(","):
        if name not in DURABILITIES:
            parser.error(f"--durability {name!r}: use {', '.join(DURABILITIES)}")
        durabilities.append(name)
    console = Console()
    for durability in durabilities:
        with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp, \
                sides("sqlite", lambda name: f"{tmp}/{name}.db", durability,
                      args.parts) as runs:
            console.print(table("SQLite", durability, measure(runs, args.rounds, args.runs)))
    if not args.no_postgres:
        with postgres_server(args.pg_url) as server:
            made: list[str] = []

            def fresh(name: str) -> str:
                made.append(server.create_database(f"ceiling_{name.replace('.', '_')}"))
                return made[-1]
            for durability in durabilities:
                try:
                    with sides("postgres", fresh, durability, args.parts) as runs:
                        console.print(table("PostgreSQL", durability,
                                            measure(runs, args.rounds, args.runs)))
                finally:
                    while made:
                        server.drop_database(made.pop())


if __name__ == "__main__":
    sys.exit(main())
