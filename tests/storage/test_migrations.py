"""Schema migrations (steward.storage.migrations): each part's tables at their own version, set
up idempotently and once when processes start together, a newer schema refused and left
alone, and a legacy (version 2) database upgraded in place with its threads going on."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from _support import ALICE, BOB, ROLES, TABLES, approval_graph, execute, snapshot
from langgraph.types import Command

import steward
from steward import ConfigError
from steward.checkpointers import StewardSaver
from steward.runtime import SCHEMAS
from steward.storage.migrations import LAYOUT, statements


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
        "schema:saver"], "schema:keys": VERSIONS["schema:keys"]}
    with steward.open(db_url) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []}, rt.config("T1", ALICE))
        assert rt.audit.verify("T1") > 0
    assert _versions(db_url) == VERSIONS


def _version_2_database(url: str, legacy: int = 2) -> None:
    """A database as Steward with (single) schema version ``legacy`` left it."""
    dialect = "sqlite" if url.startswith("sqlite:///") else "postgres"
    ddl = [stmt for schema in SCHEMAS for m in schema.migrations if m.legacy <= legacy
           for stmt in statements(dialect, m)]
    ddl += [
        "CREATE TABLE steward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"INSERT INTO steward_meta VALUES ('schema_version', '{legacy}')",
    ]
    for sql in ddl:
        execute(url, sql)


@pytest.mark.parametrize("legacy", [4, 6, 7])
def test_a_legacy_database_gets_each_parts_missing_tables(db_url: str, legacy: int) -> None:
    _version_2_database(db_url, legacy)
    with steward.open(db_url, thread_roles={"ops": "admin"}) as rt:
        approval_graph(rt.checkpointer).invoke({"items": []},
                                               rt.config("L1", ALICE, subjects=["x@y.example"]))
        assert rt.audit.verify("L1") > 0
        ops = steward.Principal(id="olga", tenant="acme", roles=frozenset({"ops"}))
        assert rt.erase("x@y.example", by=ops).threads == ("L1",)
    assert _versions(db_url) == VERSIONS


def test_a_version_2_database_upgrades_and_its_threads_go_on(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _version_2_database(db_url)
    # Version 2 kept every channel value in the blobs table: write the first steps that way.
    with monkeypatch.context() as patch:
        patch.setattr("steward.checkpointers.writing.inline_value", lambda value: False)
        with steward.open(db_url) as rt:
            approval_graph(rt.checkpointer).invoke({"items": [], "answer": 0},
                                                   rt.config("T", ALICE))
    assert execute(db_url, "SELECT value FROM steward_meta WHERE key = 'schema_version'") == [
        (str(LAYOUT),)]
    assert execute(db_url, "SELECT value FROM steward_meta WHERE key = 'schema:audit'") == [
        ("3",)]  # a legacy database's parts learn their own versions
    assert execute(db_url, "SELECT count(*) FROM steward_blobs WHERE channel = 'answer'") == [
        (1,)]
    if db_url.startswith("sqlite:///"):
        names = {r[0] for r in execute(db_url, "SELECT name FROM sqlite_master")}
        assert "steward_checkpoints_md_principal" in names
        assert not names & {"steward_checkpoints_md_tenant", "steward_checkpoints_md_source",
                            "steward_checkpoints_md_step"}
    with steward.open(db_url, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        config = rt.config("T", BOB)
        assert graph.get_state(config).values == {"items": ["first"], "answer": 0}
        out = graph.invoke(Command(resume="yes"), config)
        assert out == {"items": ["first", "last"], "answer": "yes"}
        history = [s.values.get("answer") for s in graph.get_state_history(config)]
        assert history[0] == "yes" and history.count(0) >= 2  # the old-style checkpoints
