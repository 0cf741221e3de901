"""steward.open / aopen: URLs, bad input, the store, schema migrations and retention."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _pg import PgServer
from _support import ALICE, EVE, TABLES, approval_graph, execute, snapshot
from langgraph.types import Command

import steward
from steward import ConfigError
from steward.checkpointers import StewardSaver
from steward.runtime import SCHEMAS
from steward.storage.migrations import LAYOUT


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root:hunter2@db/x", "unknown database URL scheme 'mysql'"),
        ("sqlite://relative.db", "names no file"),
        ("not a url", "has no scheme"),
        ("", "non-empty string"),
    ],
)
def test_bad_urls_raise_config_error_with_the_password_masked(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        steward.open(url)
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreachable_postgres_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://app:hunter2@/steward?host={tmp_path}&port=1"
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        steward.open(url)
    message = str(info.value)
    assert "cannot connect to PostgreSQL" in message and "app:***@" in message
    assert "hunter2" not in message
    assert time.monotonic() - started < 10


@pytest.mark.postgres
def test_missing_postgres_database_is_a_config_error(pg_server: PgServer) -> None:
    url = pg_server.admin_url.replace("/postgres?", "/no_such_db?")
    with pytest.raises(ConfigError, match="no_such_db"):
        steward.open(url)


def test_sqlite_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory exists"):
        steward.open(f"sqlite:///{tmp_path}/nope/steward.db")


def test_memory_database_runs_a_graph_and_a_store() -> None:
    with steward.open("sqlite://:memory:") as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        assert graph.invoke(Command(resume=1), rt.config("T1", ALICE))["answer"] == 1
        mine = rt.store.bind(ALICE)
        mine.put(("acme", "user:alice"), "pref", {"lang": "en"}, purpose="preference")
        item = mine.get(("acme", "user:alice"), "pref")
        assert item is not None and item.value == {"lang": "en"}


def test_store_lives_in_the_same_database(db_url: str) -> None:
    with steward.open(db_url) as rt:
        rt.store.bind(ALICE).put(("acme", "user:alice"), "k", {"v": 1}, purpose="preference")
    with steward.open(db_url) as rt:
        item = rt.store.bind(ALICE).get(("acme", "user:alice"), "k")
        assert item is not None and item.value == {"v": 1}


async def test_aopen_is_awaitable_and_an_async_context_manager(db_url: str) -> None:
    rt = await steward.aopen(db_url)
    try:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("T1", ALICE))
        await rt.store.bind(ALICE).aput(("acme", "user:alice"), "k", {"v": 2},
                                        purpose="preference")
    finally:
        await rt.aclose()
    async with steward.aopen(db_url) as again:
        state = await approval_graph(again.checkpointer).aget_state(again.config("T1", ALICE))
        assert state.next == ("ask",)
        item = await again.store.bind(ALICE).aget(("acme", "user:alice"), "k")
        assert item is not None and item.value == {"v": 2}


def test_setup_is_idempotent(db_url: str) -> None:
    with steward.open(db_url) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T1", ALICE))
        before = snapshot(db_url)
        rt.checkpointer.setup()
        rt.checkpointer.setup()
    with steward.open(db_url):
        pass
    assert snapshot(db_url) == before
    assert _versions(db_url) == VERSIONS


# Each part's tables at their version, and the layout version older releases refuse.
VERSIONS = {"schema_version": str(LAYOUT),
            **{f"schema:{s.part}": str(len(s.migrations)) for s in SCHEMAS}}


def _versions(url: str) -> dict[str, str]:
    return {k: v for k, v in execute(url, "SELECT key, value FROM steward_meta")
            if k.startswith("schema")}


def test_the_snapshots_hold_every_table_steward_creates(db_url: str) -> None:
    # _support.TABLES is read from the migrations; the "changes nothing" checks compare every
    # row of these tables, memories and erasure receipts included.
    assert {"steward_threads", "steward_checkpoints", "steward_audit", "steward_approvals",
            "steward_effects", "steward_memory", "steward_erasures", "steward_meta"} <= set(TABLES)
    with steward.open(db_url):
        pass
    sql = ("SELECT name FROM sqlite_master WHERE type = 'table'" if db_url.startswith("sqlite")
           else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    assert sorted(name for (name,) in execute(db_url, sql)) == sorted(TABLES)
    assert sorted(snapshot(db_url)) == sorted(TABLES)


def test_two_processes_setting_up_at_once(db_url: str) -> None:
    code = "import sys, steward; steward.open(sys.argv[1]).close()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def start() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-c", code, db_url], env=env,
                              capture_output=True, timeout=60, check=False)

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: start(), range(4)))
    for proc in done:
        assert proc.returncode == 0, proc.stderr.decode()
    assert _versions(db_url) == VERSIONS


def test_a_newer_schema_is_refused_and_left_alone(db_url: str) -> None:
    with steward.open(db_url) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T1", ALICE))
    before = snapshot(db_url)
    # A release newer than parts' own versions, or one part newer than this one knows.
    for key, value in (("schema_version", LAYOUT + 1), ("schema:audit", 99)):
        execute(db_url, "UPDATE steward_meta SET value = ? WHERE key = ?", (str(value), key))
        with pytest.raises(ConfigError, match="upgrade langgraph-steward"):
            steward.open(db_url)
        execute(db_url, "UPDATE steward_meta SET value = ? WHERE key = ?", (VERSIONS[key], key))
    assert snapshot(db_url) == before


def test_the_saver_alone_sets_up_its_own_tables_and_a_runtime_adds_the_rest(
        db_url: str) -> None:
    with StewardSaver.from_conn_string(db_url) as saver:
        saver.setup()
    assert _versions(db_url) == {"schema_version": str(LAYOUT), "schema:saver": VERSIONS[
        "schema:saver"]}
    with steward.open(db_url) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T1", ALICE))
        assert rt.audit.verify("T1") > 0
    assert _versions(db_url) == VERSIONS


def test_threads_expire_and_sweep_deletes_them(db_url: str) -> None:
    with steward.open(db_url, default_ttl=3600) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("short", ALICE, ttl=0.2))
        graph.invoke({"items": []}, rt.config("default", ALICE))
        graph.invoke({"items": []}, rt.config("other", EVE, ttl=0.2))
        info = rt.checkpointer.thread_info("default", ALICE)
        assert info is not None and 3500 < info["expires_at"] - time.time() <= 3600
        assert rt.sweep() == []  # nothing has expired yet
        time.sleep(0.3)
        rt.checkpointer.acquire_lease("other", "live-run", EVE)  # a live run is not swept
        assert rt.sweep() == ["short"]
        assert graph.get_state(rt.config("short", ALICE)).values == {}
        assert graph.get_state(rt.config("default", ALICE)).next == ("ask",)
        rt.checkpointer.release_lease("other", "live-run")
        assert rt.sweep() == ["other"]
        assert execute(db_url, "SELECT COUNT(*) FROM steward_blobs WHERE thread_id = ?",
                       ("short",)) == [(0,)]


def test_prune_keeps_the_latest_state_and_drops_unreferenced_blobs(db_url: str) -> None:
    with steward.open(db_url) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        graph.invoke(Command(resume="done"), rt.config("T1", ALICE))
        values = graph.get_state(rt.config("T1", ALICE)).values
        blobs_before = execute(db_url, "SELECT COUNT(*) FROM steward_blobs")[0][0]
        rt.checkpointer.prune(["T1"], principal=ALICE)
        assert graph.get_state(rt.config("T1", ALICE)).values == values
        assert len(list(rt.checkpointer.list(rt.config("T1", ALICE)))) == 1
        assert execute(db_url, "SELECT COUNT(*) FROM steward_blobs")[0][0] < blobs_before
        assert execute(db_url, "SELECT COUNT(*) FROM steward_writes")[0][0] == 0


def test_close_is_enforced_for_async_runtimes(db_url: str) -> None:
    async def scenario() -> None:
        rt = await steward.aopen(db_url)
        with pytest.raises(ConfigError, match="aclose"):
            rt.close()
        await rt.aclose()

    import asyncio

    asyncio.run(scenario())
