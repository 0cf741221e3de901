"""Encryption at rest: checkpoints and writes are AES-GCM sealed, and reading is strict.

With a key (argument or ``STEWARD_ENCRYPTION_KEY``) no payload reaches the disk in plaintext;
a wrong or missing key is refused at open with a ConfigError that says what to do, before
anything on disk changes; a payload that was altered, or planted unencrypted, raises
PayloadCorrupted instead of being read. Every test runs on SQLite and on Postgres.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from _support import ALICE, BOB, ROLES, approval_graph, execute, snapshot
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command

import steward
from steward import ConfigError, PayloadCorrupted
from steward.storage.crypto import PREFIX, Cipher
from steward.storage.places import at_blob, at_checkpoint, at_write

KEY = "0123456789abcdef" * 4  # 64 hex digits = 32 bytes
OTHER_KEY = "fedcba9876543210" * 4
CANARY = "SECRET-CANARY-123"
ENV = "STEWARD_ENCRYPTION_KEY"
PAYLOAD_TABLES = ("steward_checkpoints", "steward_blobs", "steward_writes")


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A key set in the developer's shell must not leak into tests that open without one."""
    monkeypatch.delenv(ENV, raising=False)
    yield


def _open(url: str, key: str | bytes | None = None) -> steward.Runtime:
    return steward.open(url, encryption_key=key, thread_roles=ROLES, lease_ttl=5)


def _run(url: str, key: str | bytes | None = KEY, tid: str = "T") -> dict[str, Any]:
    """Run the approval graph up to its interrupt, with a canary in state; returns the values."""
    with _open(url, key) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": [CANARY]}, rt.config(tid, ALICE))
        values = graph.get_state(rt.config(tid, ALICE)).values
    assert values == {"items": [CANARY, "first"]}
    return values


def _as_bytes(cell: Any) -> bytes:
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell)
    if isinstance(cell, str):
        return cell.encode()
    return json.dumps(cell, default=str).encode()


def _cells_with(url: str, needle: str) -> list[tuple[str, int]]:
    """(table, row index) of every stored cell, in any Steward table, containing ``needle``."""
    found = []
    for table, rows in snapshot(url).items():
        for i, row in enumerate(rows):
            if any(needle.encode() in _as_bytes(cell) for cell in row):
                found.append((table, i))
    return found


def _types(url: str, table: str) -> list[str]:
    return [r[0] for r in execute(url, f"SELECT type FROM {table}")]


def _latest(url: str, tid: str = "T") -> tuple[str, dict[str, str]]:
    """(checkpoint_id, channel_versions) of the thread's latest root checkpoint."""
    cid, versions = execute(
        url, "SELECT checkpoint_id, channel_versions FROM steward_checkpoints "
        "WHERE thread_id = ? AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1",
        (tid,))[0]
    return cid, json.loads(versions) if isinstance(versions, str) else versions


def _payload_row(url: str, table: str) -> tuple[str, tuple[Any, ...], str, bytes]:
    """A payload the latest state is read from: (WHERE clause, its params, type, blob)."""
    cid, versions = _latest(url)
    if table == "steward_checkpoints":
        where: tuple[str, tuple[Any, ...]] = (
            "thread_id = 'T' AND checkpoint_ns = '' AND checkpoint_id = ?", (cid,))
        column = "checkpoint"
    elif table == "steward_blobs":
        where = ("thread_id = 'T' AND checkpoint_ns = '' AND channel = 'items' AND version = ?",
                 (versions["items"],))
        column = "blob"
    else:
        where = ("thread_id = 'T' AND checkpoint_ns = '' AND checkpoint_id = ? "
                 "AND channel = '__interrupt__'", (cid,))
        column = "blob"
    rows = execute(url, f"SELECT type, {column} FROM {table} WHERE {where[0]}", where[1])
    assert len(rows) == 1, (table, rows)
    return where[0], where[1], rows[0][0], bytes(rows[0][1])


def _place(url: str, table: str, where: str, params: tuple[Any, ...]) -> tuple[str, ...]:
    """The associated data a payload row is sealed with (its place in the database)."""
    if table == "steward_checkpoints":
        (row,) = execute(url, f"SELECT thread_id, checkpoint_ns, checkpoint_id FROM {table} "
                         f"WHERE {where}", params)
        return at_checkpoint(*row)
    if table == "steward_blobs":
        (row,) = execute(url, f"SELECT thread_id, checkpoint_ns, channel, version FROM {table} "
                         f"WHERE {where}", params)
        return at_blob(*row)
    (row,) = execute(url, f"SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx "
                     f"FROM {table} WHERE {where}", params)
    return at_write(*row)


def test_ciphertexts_do_not_move_between_threads_but_copies_read(db_url: str) -> None:
    with _open(db_url, KEY) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": [CANARY]}, rt.config("T", ALICE))
        graph.invoke({"items": ["other"]}, rt.config("U", ALICE))
        rt.checkpointer.copy_thread("T", "T-copy", principal=ALICE)
        assert graph.get_state(rt.config("T-copy", ALICE)).values == \
            graph.get_state(rt.config("T", ALICE)).values
    # U's sealed value pasted into T's row of the same channel and version number
    (u_type, u_blob), = execute(db_url, "SELECT type, blob FROM steward_blobs WHERE "
                                "thread_id = 'U' AND channel = 'items' ORDER BY version DESC "
                                "LIMIT 1")
    t_version = _latest(db_url)[1]["items"]
    execute(db_url, "UPDATE steward_blobs SET type = ?, blob = ? WHERE thread_id = 'T' AND "
            "channel = 'items' AND version = ?", (u_type, bytes(u_blob), t_version))
    with pytest.raises(PayloadCorrupted, match="moved from another row"):
        _read(db_url)


def _store(url: str, table: str, where: str, params: tuple[Any, ...], type_: str,
           blob: bytes) -> None:
    column = "checkpoint" if table == "steward_checkpoints" else "blob"
    execute(url, f"UPDATE {table} SET type = ?, {column} = ? WHERE {where}",
            (type_, blob, *params))


def _read(url: str, key: str | None = KEY) -> dict[str, Any]:
    with _open(url, key) as rt:
        return dict(approval_graph(rt.checkpointer).get_state(rt.config("T", ALICE)).values)


# -- nothing in plaintext ----------------------------------------------------------------------


def test_encrypted_run_stores_no_plaintext(db_url: str) -> None:
    _run(db_url, KEY)
    assert _cells_with(db_url, CANARY) == []
    for table in PAYLOAD_TABLES:
        types = _types(db_url, table)
        assert types, f"{table} is empty: the run wrote nothing to scan"
        assert all(t.startswith(PREFIX) for t in types), (table, types)


def test_the_same_run_without_a_key_is_plaintext(db_url: str) -> None:
    """The scan above can fail: without a key the canary is there to be found."""
    _run(db_url, None)
    assert _cells_with(db_url, CANARY)
    for table in PAYLOAD_TABLES:
        assert not any(t.startswith(PREFIX) for t in _types(db_url, table)), table


# -- reading back with the right key -----------------------------------------------------------


def test_reopening_with_the_same_key_reads_and_resumes(db_url: str) -> None:
    values = _run(db_url, KEY)
    raw = bytes.fromhex(KEY)
    # The same 32 bytes, given as hex, URL-safe base64 (with or without padding) or raw bytes.
    for same in (KEY, KEY.upper(), base64.urlsafe_b64encode(raw).decode(),
                 base64.urlsafe_b64encode(raw).decode().rstrip("="), raw):
        assert _read(db_url, same) == values
    with _open(db_url, KEY) as rt:
        graph = approval_graph(rt.checkpointer)
        result = graph.invoke(Command(resume="yes"), rt.config("T", BOB))
        assert result == {"items": [CANARY, "first", "last"], "answer": "yes"}
        assert graph.get_state(rt.config("T", ALICE)).values == result
    assert _cells_with(db_url, CANARY) == []


def test_key_from_the_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)
    values = _run(db_url, None)  # no argument: the key comes from the environment
    assert _cells_with(db_url, CANARY) == []
    assert all(t.startswith(PREFIX) for t in _types(db_url, "steward_blobs"))
    assert _read(db_url, None) == values
    monkeypatch.delenv(ENV)
    assert _read(db_url, KEY) == values  # the same key as an argument


def test_an_explicit_key_wins_over_the_environment(db_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    values = _run(db_url, KEY)
    monkeypatch.setenv(ENV, OTHER_KEY)
    assert _read(db_url, KEY) == values


async def test_async_runtime_encrypts_and_checks_the_key(db_url: str) -> None:
    async with steward.aopen(db_url, encryption_key=KEY, thread_roles=ROLES) as rt:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": [CANARY]}, rt.config("T", ALICE))
        values = (await graph.aget_state(rt.config("T", ALICE))).values
    assert values == {"items": [CANARY, "first"]}
    assert _cells_with(db_url, CANARY) == []
    before = snapshot(db_url)
    with pytest.raises(ConfigError, match="encryption key"):
        async with steward.aopen(db_url, encryption_key=OTHER_KEY):
            pass
    assert snapshot(db_url) == before
    async with steward.aopen(db_url, encryption_key=KEY, thread_roles=ROLES) as rt:
        assert (await approval_graph(rt.checkpointer).aget_state(
            rt.config("T", ALICE))).values == values


# -- refused at open, nothing changed ----------------------------------------------------------


def test_wrong_key_is_refused_at_open_and_changes_nothing(db_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _run(db_url, KEY)
    before = snapshot(db_url)
    with pytest.raises(ConfigError) as info:
        _open(db_url, OTHER_KEY)
    message = str(info.value)
    assert "encryption key" in message and "original key" in message
    assert KEY not in message and OTHER_KEY not in message  # never print a key
    assert snapshot(db_url) == before

    monkeypatch.setenv(ENV, OTHER_KEY)
    with pytest.raises(ConfigError, match="encryption key"):
        _open(db_url, None)
    assert snapshot(db_url) == before


def test_no_key_on_an_encrypted_database_is_refused(db_url: str) -> None:
    _run(db_url, KEY)
    before = snapshot(db_url)
    with pytest.raises(ConfigError) as info:
        _open(db_url, None)
    message = str(info.value)
    assert "encrypted" in message
    assert "encryption_key" in message and ENV in message
    assert snapshot(db_url) == before


def test_a_key_on_a_plaintext_database_is_refused(db_url: str) -> None:
    _run(db_url, None)
    before = snapshot(db_url)
    with pytest.raises(ConfigError) as info:
        _open(db_url, KEY)
    message = str(info.value)
    assert "without encryption" in message and "without a key" in message
    assert KEY not in message
    assert snapshot(db_url) == before
    assert _read(db_url, None) == {"items": [CANARY, "first"]}  # still readable as it was


MALFORMED_KEYS: list[Any] = [
    "0123456789abcdef" * 2,  # 16 bytes as hex
    KEY[:-2],  # 31 bytes as hex
    KEY + "00",  # 33 bytes as hex
    "g" * 64,  # 64 characters, not hex
    b"\x01" * 31,
    b"\x01" * 33,
    KEY.encode(),  # the hex text as bytes: 64 bytes
    "not a key!",
    "",
    "   ",
    12345,
    1.5,
    ["k"],
]


def test_malformed_keys_say_how_to_make_one(db_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _run(db_url, KEY)
    before = snapshot(db_url)
    for key in MALFORMED_KEYS:
        with pytest.raises(ConfigError) as info:
            _open(db_url, key)
        message = str(info.value)
        assert "32" in message and "secrets.token_hex(32)" in message, (key, message)
        if isinstance(key, str) and len(key) > 8:
            assert key not in message, key  # a mistyped key is still a secret
        if isinstance(key, str) and key.strip():
            monkeypatch.setenv(ENV, key)
            with pytest.raises(ConfigError, match=r"secrets\.token_hex\(32\)"):
                _open(db_url, None)
            monkeypatch.delenv(ENV)
    assert snapshot(db_url) == before


# -- tampering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", PAYLOAD_TABLES)
def test_a_flipped_byte_raises_payload_corrupted(db_url: str, table: str) -> None:
    values = _run(db_url, KEY)
    where, params, type_, blob = _payload_row(db_url, table)
    for pos in (0, 11, 12, len(blob) // 2, len(blob) - 1):  # nonce, body, tag
        forged = bytearray(blob)
        forged[pos] ^= 0x01
        _store(db_url, table, where, params, type_, bytes(forged))
        with pytest.raises(PayloadCorrupted, match="altered"):
            _read(db_url)
    _store(db_url, table, where, params, type_, blob[:-1])  # truncated
    with pytest.raises(PayloadCorrupted):
        _read(db_url)
    _store(db_url, table, where, params, PREFIX + "json", blob)  # a different type tag
    with pytest.raises(PayloadCorrupted):
        _read(db_url)
    _store(db_url, table, where, params, type_, blob)  # the original reads again
    assert _read(db_url) == values


@pytest.mark.parametrize("table", PAYLOAD_TABLES)
def test_a_planted_plaintext_payload_raises_payload_corrupted(db_url: str, table: str) -> None:
    values = _run(db_url, KEY)
    where, params, type_, blob = _payload_row(db_url, table)
    # The genuine payload, stored as the serde wrote it before encryption.
    inner, plain = Cipher(KEY).open(type_, blob, "test", _place(db_url, table, where, params))
    assert not inner.startswith(PREFIX)
    _store(db_url, table, where, params, inner, plain)
    with pytest.raises(PayloadCorrupted, match="unencrypted"):
        _read(db_url)
    _store(db_url, table, where, params, type_, blob)
    assert _read(db_url) == values


def test_a_planted_state_value_is_not_read(db_url: str) -> None:
    _run(db_url, KEY)
    where, params, _, _ = _payload_row(db_url, "steward_blobs")
    type_, plain = JsonPlusSerializer().dumps_typed(["PLANTED"])
    _store(db_url, "steward_blobs", where, params, type_, plain)
    with pytest.raises(PayloadCorrupted, match="unencrypted"):
        _read(db_url)
    # Claiming the encrypted prefix without a valid seal is no better.
    _store(db_url, "steward_blobs", where, params, PREFIX + type_, plain)
    with pytest.raises(PayloadCorrupted, match="altered"):
        _read(db_url)


def test_encrypted_payloads_are_not_read_without_a_key(db_url: str) -> None:
    """Even with the key check removed from the database, ciphertext never reaches the serde."""
    _run(db_url, KEY)
    execute(db_url, "DELETE FROM steward_meta WHERE key = 'key_fingerprint'")
    with pytest.raises(ConfigError, match="encryption_key"):
        _read(db_url, None)


def test_a_payload_moved_from_another_row_is_refused(db_url: str) -> None:
    with _open(db_url, KEY) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": [CANARY]}, rt.config("T", ALICE))
    _, versions = _latest(db_url)
    rows = execute(db_url, "SELECT version, type, blob FROM steward_blobs "
                   "WHERE thread_id = 'T' AND channel = 'items' ORDER BY version")
    assert len(rows) == 2 and rows[-1][0] == versions["items"]
    (_, old_type, old_blob), (new_version, _, _) = rows
    execute(db_url, "UPDATE steward_blobs SET type = ?, blob = ? "
            "WHERE thread_id = 'T' AND channel = 'items' AND version = ?",
            (old_type, bytes(old_blob), new_version))
    with pytest.raises(PayloadCorrupted):
        _read(db_url)


def test_a_rolled_back_version_column_is_refused(db_url: str) -> None:
    """Pointing a checkpoint at an older (genuine) value through its plaintext version column
    is caught: an encrypted checkpoint seals its own copy of the versions."""
    with _open(db_url, KEY) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": [CANARY]}, rt.config("T", ALICE))
    cid, versions = _latest(db_url)
    (older,), = execute(db_url, "SELECT version FROM steward_blobs WHERE thread_id = 'T' AND "
                        "channel = 'items' AND version <> ? ORDER BY version LIMIT 1",
                        (versions["items"],))
    forged = json.dumps({**versions, "items": older})
    execute(db_url, "UPDATE steward_checkpoints SET channel_versions = ? WHERE checkpoint_id = ?",
            (forged, cid))
    with pytest.raises(PayloadCorrupted, match="channel versions"):
        _read(db_url)
