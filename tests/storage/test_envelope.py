"""A data key per thread from AWS KMS (steward.storage.envelope with KmsKeys), on SQLite and on
PostgreSQL, against moto's server mode on 127.0.0.1 (tests/_kms.py).

Each thread's payloads (checkpoints, values, writes, effect results) are sealed with a key of
its own, and each person's memories with theirs; a thread's writes after the first cost no
KMS call; rotation needs no rewrite; two writers racing on a new thread or person end with one
key; deleting a thread or erasing a person destroys its keys, so a copy of the rows made before
(a backup of the data tables, rows a failed delete left) can no longer be read while everything
else still reads; a KMS that refuses or cannot be reached is a steward error and the refused
write changes nothing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import pytest
from _kms import Kms, client, free_port
from _support import ALICE, BOB, ROLES, approval_graph, execute, one_node, snapshot, stored
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.types import Command

import steward
from steward import ConfigError, DataKeyDestroyed, KmsKeys, PayloadCorrupted, StorageError
from steward.checkpointers import StewardSaver
from steward.memory import team_space, user_space
from steward.storage.crypto import PREFIX, Cipher
from steward.storage.drivers import SqliteDriver
from steward.storage.envelope import ENVELOPE, thread_context
from steward.storage.keys import DataKey
from steward.storage.places import at_checkpoint, at_effect

CANARY = "SECRET-CANARY-KMS"
JANE = "jane.doe@example.com"
OPS = steward.Principal(id="olga", tenant="acme", roles=frozenset({"ops"}))
ERASE_ROLES = {**ROLES, "ops": "admin"}
PAYLOADS = ("steward_checkpoints", "steward_blobs", "steward_writes")


class Counting:
    """A DataKeyProvider around KmsKeys that counts its calls (and may hold them at a
    barrier, so that racing writers all ask for a key before any of them stores one)."""

    def __init__(self, inner: KmsKeys, *, cache_ttl: float = 300.0, cache_size: int = 10_000,
                 barrier: threading.Barrier | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.barrier = barrier
        self.generated = 0
        self.unwrapped = 0
        self._lock = threading.Lock()

    def generate(self, context: Mapping[str, str]) -> DataKey:
        with self._lock:
            self.generated += 1
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        return self.inner.generate(context)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        with self._lock:
            self.unwrapped += 1
        return self.inner.unwrap(wrapped, context)


def _open(url: str, key: Any, **options: Any) -> steward.Runtime:
    return steward.open(url, encryption_key=key, thread_roles=ERASE_ROLES, lease_ttl=5,
                        **options)


def _cells_with(url: str, needle: str) -> list[str]:
    found = []
    for table, rows in snapshot(url).items():
        for row in rows:
            for cell in row:
                raw = bytes(cell) if isinstance(cell, (bytes, bytearray, memoryview)) else \
                    json.dumps(cell, default=str).encode()
                if needle.encode() in raw:
                    found.append(table)
    return found


def _thread_keys(url: str) -> dict[str, tuple[str | None, bytes, str]]:
    return {r[0]: (r[1], bytes(r[2]), r[3]) for r in execute(
        url, "SELECT thread_id, tenant, wrapped, master FROM steward_thread_keys")}


def _subject_keys(url: str) -> dict[tuple[str, str], bytes]:
    return {(r[0], r[1]): bytes(r[2]) for r in execute(
        url, "SELECT tenant, subject, wrapped FROM steward_subject_keys")}


class Paid(TypedDict, total=False):
    receipt: dict[str, str]


@steward.effect(name="tests.charge")
def _charge(order: str) -> dict[str, str]:
    return {"order": order, "note": CANARY}


def _charging(state: Paid) -> Paid:
    return {"receipt": _charge("o-1")}


def _run_about_jane(rt: steward.Runtime) -> None:
    """Thread T about Jane (an approval graph, then an effect), U about no one, and memories:
    Jane's, Alice's own and the team's about no one."""
    graph = approval_graph(rt.checkpointer)
    graph.invoke({"items": [CANARY]}, rt.config("T", ALICE, subjects=[JANE]))
    graph.invoke({"items": ["other"]}, rt.config("U", ALICE))
    one_node(Paid, _charging).compile(checkpointer=rt.checkpointer).invoke(
        {}, rt.config("T-pay", ALICE, subjects=[JANE]))
    mine = rt.store.bind(ALICE)
    mine.put(team_space("acme", "support"), "jane", {"text": CANARY}, purpose="case-file",
             subject=JANE)
    mine.put(team_space("acme", "support"), "faq", {"text": "refunds take 5 days"},
             purpose="case-file")
    mine.put(user_space(ALICE), "prefs", {"text": "by e-mail"}, purpose="preference")


# -- sealed per thread and per person --------------------------------------------------------


def test_each_thread_and_person_has_a_data_key_of_its_own(db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        _run_about_jane(rt)
        assert rt.store.bind(ALICE).get(team_space("acme", "support"), "jane").value == \
            {"text": CANARY}
    assert _cells_with(db_url, CANARY) == []  # nowhere in the clear, effect results included
    for table in (*PAYLOADS, "steward_memory"):
        types = [r[0] for r in execute(db_url, f"SELECT type FROM {table}")]
        assert types and all(t.startswith(PREFIX) for t in types), table
    (rtype,), = execute(db_url, "SELECT type FROM steward_effects WHERE thread_id = 'T-pay'")
    assert rtype.startswith(PREFIX)
    keys = _thread_keys(db_url)
    assert set(keys) == {"T", "U", "T-pay"}
    assert {tenant for tenant, _, _ in keys.values()} == {"acme"}
    assert {master for _, _, master in keys.values()} == {kms.arn}
    assert len({wrapped for _, wrapped, _ in keys.values()}) == 3
    assert set(_subject_keys(db_url)) == {("acme", JANE), ("acme", ""), ("acme", "alice")}
    assert execute(db_url, "SELECT value FROM steward_meta WHERE key = 'key_fingerprint'") == \
        [(ENVELOPE,)]
    # T's checkpoint opens with T's data key, and not with U's.
    tid, ns, cid, ctype, blob = execute(
        db_url, "SELECT thread_id, checkpoint_ns, checkpoint_id, type, checkpoint FROM "
        "steward_checkpoints WHERE thread_id = 'T' LIMIT 1")[0]
    own, other = (Cipher(kms.keys().unwrap(keys[t][1], thread_context(t, "acme")))
                  for t in ("T", "U"))
    own.open(ctype, bytes(blob), "test", at_checkpoint(tid, ns, cid))
    with pytest.raises(PayloadCorrupted):
        other.open(ctype, bytes(blob), "test", at_checkpoint(tid, ns, cid))


def test_a_threads_writes_after_the_first_cost_no_kms_call(db_url: str, kms: Kms) -> None:
    keys = Counting(kms.keys())
    with _open(db_url, keys) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["a"]}, rt.config("T", ALICE))
        graph.invoke(Command(resume="yes"), rt.config("T", BOB))
        for _ in range(3):
            graph.get_state(rt.config("T", ALICE))
        assert (keys.generated, keys.unwrapped) == (1, 0)  # made once, never unwrapped
        assert rt.checkpointer.codec.thread("T") is not None  # a dictionary hit from now on
    again = Counting(kms.keys())
    with _open(db_url, again) as rt:  # a new process: an empty cache
        graph = approval_graph(rt.checkpointer)
        for _ in range(3):
            assert graph.get_state(rt.config("T", ALICE)).values["answer"] == "yes"
        graph.invoke({"items": ["b"]}, rt.config("T", ALICE))
        assert (again.generated, again.unwrapped) == (0, 1)


def test_one_key_for_the_whole_database_costs_nothing_per_thread(db_url: str) -> None:
    with _open(db_url, "0123456789abcdef" * 4) as rt:
        codec = rt.checkpointer.codec
        assert codec.thread("T") is codec and codec.thread_key_stmt("T") is None
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    assert execute(db_url, "SELECT count(*) FROM steward_thread_keys") == [(0,)]


def test_unwrapped_keys_are_kept_for_a_bounded_time_and_number(db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        for tid in ("T", "U"):
            graph.invoke({"items": [tid]}, rt.config(tid, ALICE))

    def reads(keys: Counting, order: str, pause: float = 0.0) -> int:
        with _open(db_url, keys) as rt:
            graph = approval_graph(rt.checkpointer)
            for tid in order:
                graph.get_state(rt.config(tid, ALICE))
                time.sleep(pause)
        return keys.unwrapped

    assert reads(Counting(kms.keys()), "TUTUTU") == 2  # cached
    assert reads(Counting(kms.keys(), cache_ttl=0), "TTT") == 3  # never kept
    assert reads(Counting(kms.keys(), cache_size=1), "TUT") == 3  # T was pushed out by U
    assert reads(Counting(kms.keys(), cache_size=2), "TUT") == 2
    assert reads(Counting(kms.keys(), cache_ttl=0.3), "TT", pause=0.5) == 2  # expired


async def test_the_async_runtime_seals_with_kms_keys(db_url: str, kms: Kms) -> None:
    keys = Counting(kms.keys())
    async with steward.aopen(db_url, encryption_key=keys, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": [CANARY]}, rt.config("T", ALICE))
        await graph.ainvoke(Command(resume="yes"), rt.config("T", BOB))
        assert (await graph.aget_state(rt.config("T", ALICE))).values == \
            {"items": [CANARY, "first", "last"], "answer": "yes"}
    assert keys.generated == 1 and _cells_with(db_url, CANARY) == []
    async with steward.aopen(db_url, encryption_key=f"kms:{kms.alias}",
                             thread_roles=ROLES) as rt:
        assert (await approval_graph(rt.checkpointer).aget_state(
            rt.config("T", ALICE))).values["answer"] == "yes"


# -- rotation, moved keys, racing writers ----------------------------------------------------


def test_rotating_the_kms_key_rewrites_nothing(db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    before = snapshot(db_url)
    kms.admin.enable_key_rotation(KeyId=kms.key_id)
    kms.admin.rotate_key_on_demand(KeyId=kms.key_id)
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        assert graph.get_state(rt.config("T", ALICE)).values == {"items": ["a", "first"]}
        assert snapshot(db_url) == before  # opening and reading after a rotation: no rewrite
        graph.invoke(Command(resume="yes"), rt.config("T", BOB))
        graph.invoke({"items": ["b"]}, rt.config("V", ALICE))
    after = snapshot(db_url)
    for table in (*PAYLOADS, "steward_thread_keys"):
        assert all(row in after[table] for row in before[table]), table  # kept as they were


def test_a_wrapped_key_moved_to_another_thread_does_not_open(db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        for tid in ("T", "U"):
            graph.invoke({"items": [tid]}, rt.config(tid, ALICE))
    t_wrapped = _thread_keys(db_url)["T"][1]
    execute(db_url, "UPDATE steward_thread_keys SET wrapped = ? WHERE thread_id = 'U'",
            (t_wrapped,))
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        assert graph.get_state(rt.config("T", ALICE)).values["items"][0] == "T"
        with pytest.raises(PayloadCorrupted, match="moved from another thread"):
            graph.get_state(rt.config("U", ALICE))


def _write_at_once(url: str, provider: Any, tid: str, writers: int) -> None:
    """``writers`` savers, each on connections of its own, put a checkpoint into the same new
    thread at the same moment."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with StewardSaver.from_conn_string(url, encryption_key=provider) as saver:
                checkpoint = empty_checkpoint()
                checkpoint["channel_values"] = {"n": n, "text": CANARY * 20}
                checkpoint["channel_versions"] = {"n": "1", "text": "1"}
                start.wait(timeout=30)
                saver.put({"configurable": {"thread_id": tid, "checkpoint_ns": ""}},
                          checkpoint, {"source": "input", "step": n}, {"n": "1", "text": "1"})
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors


def test_writers_racing_on_a_new_thread_end_with_one_key(db_url: str, kms: Kms) -> None:
    with StewardSaver.from_conn_string(db_url, encryption_key=kms.keys()):
        pass  # the database exists, set up; the thread does not
    _write_at_once(db_url, kms.keys(), "R", 4)
    assert list(_thread_keys(db_url)) == ["R"]
    with StewardSaver.from_conn_string(db_url, encryption_key=kms.keys()) as saver:
        found = list(saver.list({"configurable": {"thread_id": "R"}}))
    assert sorted(t.checkpoint["channel_values"]["n"] for t in found) == [0, 1, 2, 3]


def test_racing_writers_that_both_made_a_key_keep_the_first(db_url: str, kms: Kms) -> None:
    """Two runtimes storing the first memories about one person at once: on PostgreSQL both
    make a data key (the barrier holds each until both have one) and the second INSERT finds
    the first's (ON CONFLICT DO NOTHING), reads it back and seals with it; SQLite's write lock
    lets only one in at a time, so the second reads the first's key."""
    both = 2 if db_url.startswith("postgres") else None
    barrier = threading.Barrier(both) if both else None
    providers = [Counting(kms.keys(), barrier=barrier) for _ in range(2)]
    runtimes = [_open(db_url, p) for p in providers]
    errors: list[BaseException] = []

    def put(n: int) -> None:
        try:
            runtimes[n].store.bind(ALICE).put(team_space("acme", "support"), f"k{n}",
                                             {"text": f"about jane {n}"}, purpose="case-file",
                                             subject=JANE)
        except BaseException as exc:
            errors.append(exc)

    try:
        workers = [threading.Thread(target=put, args=(n,)) for n in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not errors, errors
    finally:
        for runtime in runtimes:
            runtime.close()
    if both:
        assert [p.generated for p in providers] == [1, 1]
        assert sum(p.unwrapped for p in providers) == 1  # the loser unwrapped the winner's
    assert list(_subject_keys(db_url)) == [("acme", JANE)]
    with _open(db_url, kms.keys()) as rt:
        mine = rt.store.bind(ALICE)
        assert [mine.get(team_space("acme", "support"), f"k{n}").value["text"]
                for n in range(2)] == ["about jane 0", "about jane 1"]


# -- crypto-shredding ---------------------------------------------------------------------------


@pytest.fixture
def backup() -> Iterator[Any]:
    """Copies of rows in tables of their own (``bk_<table>``), restored later: a backup of the
    data tables, or rows a failed delete left behind."""
    made: list[tuple[str, str]] = []

    def take(url: str, table: str, where: str) -> None:
        execute(url, f"CREATE TABLE bk_{table} AS SELECT * FROM {table} WHERE {where}")
        made.append((url, table))

    yield take
    for url, table in made:
        execute(url, f"DROP TABLE IF EXISTS bk_{table}")


def _restore(url: str, table: str, where: str | None = None) -> None:
    if where is not None:
        execute(url, f"DELETE FROM {table} WHERE {where}")
    execute(url, f"INSERT INTO {table} SELECT * FROM bk_{table}")


def test_deleting_a_thread_makes_every_copy_of_its_rows_unreadable(
        db_url: str, kms: Kms, backup: Any) -> None:
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        for tid in ("T", "U"):
            graph.invoke({"items": [tid]}, rt.config(tid, ALICE))
        for table in PAYLOADS:
            backup(db_url, table, "thread_id = 'T'")
        rt.checkpointer.delete_thread("T", principal=ALICE)
        assert set(_thread_keys(db_url)) == {"U"}
        for table in PAYLOADS:
            _restore(db_url, table)  # the rows come back; their key does not
        with pytest.raises(DataKeyDestroyed, match="crypto-shredding") as info:
            rt.checkpointer.get_tuple({"configurable": {"thread_id": "T", "principal": ALICE}})
        assert "thread 'T'" in str(info.value)
        assert isinstance(info.value, PayloadCorrupted)
        assert graph.get_state(rt.config("U", ALICE)).values == {"items": ["U", "first"]}


def test_a_payload_planted_in_the_clear_where_a_data_key_was_destroyed_is_refused(
        db_url: str, kms: Kms) -> None:
    """Under data keys every payload is sealed: a row written in the clear into a thread
    whose key is gone was planted, and reads as corrupted, never as the thread's state."""
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["T"]}, rt.config("T", ALICE))
        rt.checkpointer.delete_thread("T", principal=ALICE)
        planted = {**empty_checkpoint(), "channel_values": {"items": ["planted"]}}
        kind, blob = rt.checkpointer.serde.dumps_typed(planted)
        assert not kind.startswith(PREFIX)
        execute(db_url, "INSERT INTO steward_checkpoints (thread_id, checkpoint_ns, "
                "checkpoint_id, type, checkpoint, metadata, channel_versions) VALUES "
                "('T', '', ?, ?, ?, '{}', '{}')", (planted["id"], kind, blob))
        with pytest.raises(PayloadCorrupted, match="stored unencrypted") as info:
            rt.checkpointer.get_tuple({"configurable": {"thread_id": "T", "principal": ALICE}})
        assert not isinstance(info.value, DataKeyDestroyed)
        assert "thread 'T'" in str(info.value)


def test_the_keys_of_more_threads_than_a_statement_takes_are_read_in_chunks(
        db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["T"]}, rt.config("T", ALICE))
        driver = rt.checkpointer.driver.inner
        if isinstance(driver, SqliteDriver):  # as SQLite builds before 3.32 (and some now) do
            driver.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
            count = 1_200
        else:
            count = 70_000  # beyond PostgreSQL's 65,535 parameters of a statement
        ids = ["T", *(f"none-{i}" for i in range(count))]
        codecs = rt.checkpointer.driver.run(rt.checkpointer.codec.threads_op(ids), write=False)
        assert len(codecs) == len(ids)
        assert codecs["T"].cipher is not None and codecs["none-7"].gone == "thread 'none-7'"


def test_erasing_a_person_shreds_their_threads_memories_and_effect_results(
        db_url: str, kms: Kms, backup: Any) -> None:
    with _open(db_url, kms.keys()) as rt:
        _run_about_jane(rt)
        about = "thread_id IN ('T', 'T-pay')"
        for table in (*PAYLOADS, "steward_effects"):
            backup(db_url, table, about)
        backup(db_url, "steward_memory", f"subject = '{JANE}'")
        old = _thread_keys(db_url)
        receipt = rt.erase(JANE, by=OPS)
        assert set(receipt.threads) == {"T", "T-pay"} and receipt.memories == 1
        assert set(_thread_keys(db_url)) == {"U"}
        assert set(_subject_keys(db_url)) == {("acme", ""), ("acme", "alice")}

        # The erased thread goes on, under a new key; the copies made before stay dead.
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["after"]}, rt.config("T", ALICE))
        assert _thread_keys(db_url)["T"][1] != old["T"][1]
        for table in (*PAYLOADS, "steward_effects"):
            _restore(db_url, table, about if table == "steward_effects" else None)
        _restore(db_url, "steward_memory")
        rt.checkpointer.forget()
        assert graph.get_state(rt.config("T", ALICE)).values == {"items": ["after", "first"]}
        with pytest.raises(PayloadCorrupted, match="earlier key of thread 'T' that deleting "
                           "or erasing it destroyed"):
            list(graph.get_state_history(rt.config("T", ALICE)))  # the old copy, new key
        with pytest.raises(DataKeyDestroyed):
            rt.checkpointer.get_tuple({"configurable": {"thread_id": "T-pay",
                                                        "principal": ALICE}})
        with pytest.raises(DataKeyDestroyed, match=r"about 'jane\.doe@example\.com'"):
            rt.store.bind(ALICE).get(team_space("acme", "support"), "jane")
        (rtype, result), = execute(db_url, "SELECT type, result FROM steward_effects WHERE "
                                   "thread_id = 'T-pay'")
        codec = rt.checkpointer.driver.run(
            rt.checkpointer.codec.thread_op("T-pay", None, create=False), write=False)
        with pytest.raises(DataKeyDestroyed):
            codec.load(rt.checkpointer.serde, rtype, bytes(result), "the effect",
                       at_effect("T-pay", "n", 0))
        # Everything else reads as before.
        assert graph.get_state(rt.config("U", ALICE)).values == {"items": ["other", "first"]}
        mine = rt.store.bind(ALICE)
        assert mine.get(team_space("acme", "support"), "faq").value["text"].startswith("refunds")
        assert mine.get(user_space(ALICE), "prefs").value == {"text": "by e-mail"}


def test_erasing_someone_whose_memories_expired_still_destroys_their_key(
        db_url: str, kms: Kms, backup: Any) -> None:
    with _open(db_url, kms.keys()) as rt:
        rt.store.bind(ALICE).put(team_space("acme", "support"), "jane", {"text": CANARY},
                                 purpose="case-file", subject=JANE, ttl=0.001)  # minutes
        backup(db_url, "steward_memory", f"subject = '{JANE}'")
        time.sleep(0.1)
        rt.sweep()
        assert execute(db_url, "SELECT count(*) FROM steward_memory") == [(0,)]
        receipt = rt.erase(JANE, by=OPS)
        assert (receipt.outcome, receipt.memories) == ("erased", 0)
        assert _subject_keys(db_url) == {}  # copies of the expired memory: unreadable
        assert rt.erase(JANE, by=OPS).outcome == "already_erased"
        _restore(db_url, "steward_memory")
        execute(db_url, "UPDATE steward_memory SET expires_at = NULL")
        with pytest.raises(DataKeyDestroyed):
            rt.store.bind(ALICE).get(team_space("acme", "support"), "jane")


def test_a_whole_backup_taken_before_an_erasure_still_reads_while_the_kms_key_lives(
        tmp_path: Path, kms: Kms) -> None:
    """What crypto-shredding does not cover, as the README says: a backup that holds the keys
    table from before the erasure holds the wrapped keys, which KMS still unwraps."""
    url = f"sqlite:///{tmp_path}/live.db"
    with _open(url, kms.keys()) as rt:
        approval_graph(rt.checkpointer).invoke({"items": [CANARY]},
                                               rt.config("T", ALICE, subjects=[JANE]))
        rt.checkpointer.driver.run(_checkpoint_wal(), write=False)
        shutil.copy(tmp_path / "live.db", tmp_path / "backup.db")
        rt.erase(JANE, by=OPS)
    with _open(f"sqlite:///{tmp_path}/backup.db", kms.keys()) as old:
        assert approval_graph(old.checkpointer).get_state(
            old.config("T", ALICE)).values["items"] == [CANARY, "first"]


def _checkpoint_wal() -> Any:
    from steward.storage.ops import Stmt

    yield Stmt("PRAGMA wal_checkpoint(FULL)")


# -- KMS failing: a steward error, and nothing changed ------------------------------------------


def test_kms_refusing_mid_way_changes_nothing(db_url: str, kms: Kms) -> None:
    keys = kms.app_keys()
    with _open(db_url, keys) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["a"]}, rt.config("T", ALICE))
        before = snapshot(db_url)
        with kms.deny("kms:GenerateDataKey"):
            checkpoint = empty_checkpoint()
            with pytest.raises(ConfigError, match="denied kms:GenerateDataKey"):
                rt.checkpointer.put({"configurable": {"thread_id": "V", "checkpoint_ns": "",
                                                      "principal": ALICE}},
                                    checkpoint, {"source": "input", "step": -1}, {})
            assert snapshot(db_url) == before  # no thread, no checkpoint, no key, no event
            with pytest.raises(ConfigError, match="denied kms:GenerateDataKey"):
                graph.invoke({"items": ["b"]}, rt.config("V", ALICE))
            assert execute(db_url, "SELECT count(*) FROM steward_checkpoints WHERE "
                           "thread_id = 'V'") == [(0,)]
            assert "V" not in _thread_keys(db_url)
            failed = rt.audit.events("V", ALICE)[-1]  # the run ended as failed runs do
            assert failed.kind == "run_error" and "kms:GenerateDataKey" in json.dumps(
                failed.payload)
            graph.invoke(Command(resume="yes"), rt.config("T", BOB))  # T's key is at hand
    before = stored(db_url)
    with _open(db_url, keys) as rt, kms.deny("kms:Decrypt"):  # a new process: nothing cached
        graph = approval_graph(rt.checkpointer)
        with pytest.raises(ConfigError, match="denied kms:Decrypt") as info:
            graph.get_state(rt.config("T", ALICE))
        assert "thread 'T'" in str(info.value)
        with pytest.raises(ConfigError, match="denied kms:Decrypt"):
            graph.invoke({"items": ["c"]}, rt.config("T", ALICE))
    assert stored(db_url) == before
    with _open(db_url, keys) as rt:  # granted again: all there, and it goes on
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": ["c"]}, rt.config("T", ALICE))
        assert graph.get_state(rt.config("T", ALICE)).values["items"][-2:] == ["c", "first"]


def test_an_unreachable_kms_is_a_storage_error_and_changes_nothing(db_url: str,
                                                                   kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    before = stored(db_url)
    dead = KmsKeys(kms.alias, client=client(f"http://127.0.0.1:{free_port()}"))
    with _open(db_url, dead) as rt:
        graph = approval_graph(rt.checkpointer)
        with pytest.raises(StorageError, match="cannot reach AWS KMS"):
            graph.invoke({"items": ["b"]}, rt.config("V", ALICE))
        with pytest.raises(StorageError, match="cannot reach AWS KMS"):
            graph.get_state(rt.config("T", ALICE))
    assert {k: v for k, v in stored(db_url).items() if k != "steward_threads"} == \
        {k: v for k, v in before.items() if k != "steward_threads"}
    assert execute(db_url, "SELECT count(*) FROM steward_checkpoints WHERE thread_id = 'V'") \
        == [(0,)]


def test_an_unknown_kms_key_is_a_config_error(db_url: str, kms: Kms) -> None:
    with _open(db_url, kms.keys("alias/no-such-key")) as rt:
        with pytest.raises(ConfigError, match="has no key alias/no-such-key"):
            approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    assert execute(db_url, "SELECT count(*) FROM steward_checkpoints") == [(0,)]


# -- opening ----------------------------------------------------------------------------------


def test_opening_checks_which_kind_of_encryption_a_database_has(db_url: str, tmp_path: Path,
                                                               kms: Kms) -> None:
    with _open(db_url, kms.keys()) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    before = snapshot(db_url)
    with pytest.raises(ConfigError, match="kms:<key id>"):
        _open(db_url, None)
    with pytest.raises(ConfigError, match="data key per thread"):
        _open(db_url, "0123456789abcdef" * 4)
    assert snapshot(db_url) == before
    static = f"sqlite:///{tmp_path}/static.db"
    with _open(static, "0123456789abcdef" * 4) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    with pytest.raises(ConfigError, match="encrypted with one key"):
        _open(static, kms.keys())
    plain = f"sqlite:///{tmp_path}/plain.db"
    with _open(plain, None) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["a"]}, rt.config("T", ALICE))
    with pytest.raises(ConfigError, match="without encryption"):
        _open(plain, kms.keys())
