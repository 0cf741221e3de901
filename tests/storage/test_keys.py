"""Key providers (steward.storage.keys): the key itself, an environment variable, a file, or text
naming one; one key seals exactly as before, so an existing encrypted database opens with the
same key however it is given, and every bad key, file or variable is a ConfigError at open
that says what to do and never prints a key."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest
from _support import ALICE, ROLES, approval_graph, snapshot

import steward
from steward import ConfigError, EnvKey, FileKey, KmsKeys, StaticKey
from steward.storage.crypto import Cipher
from steward.storage.envelope import Envelope
from steward.storage.keys import DataKey, DataKeyProvider, KeyProvider, key_source

KEY = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
ENV = "STEWARD_ENCRYPTION_KEY"


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def _key_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "steward.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def _values(url: str, key: object) -> dict[str, object]:
    with steward.open(url, encryption_key=key, thread_roles=ROLES) as rt:  # type: ignore[arg-type]
        return dict(approval_graph(rt.checkpointer).get_state(rt.config("T", ALICE)).values)


def test_every_provider_of_the_same_key_opens_the_same_database(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database written with the raw key (today's behaviour) opens with the same 32 bytes from
    any provider: the payloads on disk are sealed the same way."""
    with steward.open(db_url, encryption_key=KEY, thread_roles=ROLES) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["x"]}, rt.config("T", ALICE))
    before = snapshot(db_url)
    monkeypatch.setenv("MY_KEY", KEY)
    raw = bytes.fromhex(KEY)
    hexfile = _key_file(tmp_path, (KEY + "\n").encode())
    binary = tmp_path / "raw.key"
    binary.write_bytes(raw)
    binary.chmod(0o400)
    for source in (StaticKey(KEY), StaticKey(raw), EnvKey("MY_KEY"), FileKey(hexfile),
                   FileKey(str(binary)), "env:MY_KEY", f"file:{hexfile}", f"FILE:{binary}",
                   base64.urlsafe_b64encode(raw).decode()):
        assert _values(db_url, source) == {"items": ["x", "first"]}, source
    monkeypatch.setenv(ENV, f"file:{hexfile}")  # the default variable may name a provider too
    assert _values(db_url, None) == {"items": ["x", "first"]}
    assert snapshot(db_url) == before  # reading changed nothing


def test_a_provider_of_another_key_is_refused_at_open(db_url: str, tmp_path: Path) -> None:
    with steward.open(db_url, encryption_key=KEY, thread_roles=ROLES) as rt:
        approval_graph(rt.checkpointer).invoke({"items": ["x"]}, rt.config("T", ALICE))
    before = snapshot(db_url)
    with pytest.raises(ConfigError, match="does not match"):
        steward.open(db_url, encryption_key=FileKey(_key_file(tmp_path, OTHER.encode())))
    assert snapshot(db_url) == before


def test_providers_meet_their_protocols_and_never_show_a_key(tmp_path: Path) -> None:
    path = _key_file(tmp_path, KEY.encode())
    for provider in (StaticKey(KEY), EnvKey(), FileKey(path)):
        assert isinstance(provider, KeyProvider)
        assert not isinstance(provider, DataKeyProvider)
        assert KEY not in repr(provider)
    assert repr(StaticKey(KEY)) == "StaticKey(<32 bytes>)"
    assert isinstance(KmsKeys("alias/x", client=object()), DataKeyProvider)
    assert Cipher(StaticKey(KEY).key()).fingerprint == Cipher(KEY).fingerprint


def test_a_missing_environment_variable_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    for source in (EnvKey("NO_SUCH_KEY"), "env:NO_SUCH_KEY"):
        with pytest.raises(ConfigError, match="NO_SUCH_KEY holds no encryption key"):
            key_source(source)
    monkeypatch.setenv("BAD_KEY", "not-a-key-but-a-secret")
    with pytest.raises(ConfigError) as info:
        key_source("env:BAD_KEY")
    assert "BAD_KEY" in str(info.value) and "not-a-key-but-a-secret" not in str(info.value)
    assert "secrets.token_hex(32)" in str(info.value)


def test_key_files_that_cannot_serve_are_refused_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(ConfigError, match="cannot read the encryption key file") as info:
        key_source(FileKey(missing))
    assert "chmod 600" in str(info.value)
    secret = "s3cr3t-but-not-a-key"
    bad = _key_file(tmp_path, secret.encode())
    with pytest.raises(ConfigError, match="does not hold a key") as info:
        key_source(f"file:{bad}")
    assert secret not in str(info.value) and "secrets.token_hex(32)" in str(info.value)
    with pytest.raises(ConfigError, match="does not hold a key"):
        key_source(FileKey(_key_file(tmp_path, os.urandom(31))))
    if os.name == "posix":
        loose = _key_file(tmp_path, KEY.encode(), mode=0o666)
        with pytest.raises(ConfigError, match="written by other users") as info:
            key_source(FileKey(loose))
        assert "chmod 600" in str(info.value)
        # Readable by others is allowed: container secret mounts are (0644 by default).
        assert isinstance(key_source(FileKey(_key_file(tmp_path, KEY.encode(), 0o644))),
                          Cipher)


@pytest.mark.parametrize(("source", "form"), [("env:", "env:<"), ("file:", "file:<"),
                                             ("kms:", "kms:<"), (" kms:  ", "kms:<")])
def test_a_scheme_that_names_nothing_says_what_it_takes(source: str, form: str) -> None:
    with pytest.raises(ConfigError, match="names nothing") as info:
        key_source(source)
    assert f"'{form}" in str(info.value)


@pytest.mark.parametrize("source", [42, 1.5, ["k"], object()])
def test_objects_that_are_no_key_are_refused(source: object) -> None:
    with pytest.raises(ConfigError, match=r"secrets\.token_hex\(32\)"):
        key_source(source)


def test_kms_keys_without_boto3_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 fails
    for source in ("kms:alias/steward", None):
        if source is None:
            monkeypatch.setenv(ENV, "kms:alias/steward")
        with pytest.raises(ConfigError, match=r"pip install 'langgraph-steward\[aws\]'"):
            key_source(source)
    with pytest.raises(ConfigError, match=r"langgraph-steward\[aws\]"):
        KmsKeys("alias/steward")


def test_data_key_providers_need_a_sane_cache() -> None:
    for bad in ({"cache_ttl": -1}, {"cache_ttl": "5"}, {"cache_size": 0},
                {"cache_size": 1.5}):
        with pytest.raises(ConfigError, match="cache_"):
            key_source(KmsKeys("alias/x", client=object(), **bad))  # type: ignore[arg-type]
        # Given straight to a saver (not through encryption_key=), the same refusal.
        with pytest.raises(ConfigError, match="cache_"):
            Envelope(KmsKeys("alias/x", client=object(), **bad))  # type: ignore[arg-type]


class _Failing:
    """A KeyProvider whose source is gone (a vault that cannot be reached)."""

    def key(self) -> bytes:
        raise OSError("vault.internal: connection refused")


def test_a_key_provider_that_fails_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="_Failing failed to give the encryption key") as info:
        key_source(_Failing())
    assert "connection refused" in str(info.value)


class _ShortKeys:
    """A DataKeyProvider that hands out 16-byte keys (AES-128): not what Steward seals with."""

    name = "short keys"
    cache_ttl = 300.0
    cache_size = 10

    def generate(self, context: object) -> DataKey:
        return DataKey(b"k" * 16, b"wrapped", "short")

    def unwrap(self, wrapped: bytes, context: object) -> bytes:
        return b"k" * 16


def test_a_data_key_of_the_wrong_size_is_refused_and_nothing_is_sealed_with_it(
        db_url: str) -> None:
    with steward.open(db_url, encryption_key=_ShortKeys(), thread_roles=ROLES) as rt:
        with pytest.raises(ConfigError, match="short keys gave a data key of 16 bytes for "
                           "thread 'T': AES-256 needs 32"):
            approval_graph(rt.checkpointer).invoke({"items": ["x"]}, rt.config("T", ALICE))
        rows = snapshot(db_url)
        for table in ("steward_checkpoints", "steward_blobs", "steward_writes",
                      "steward_thread_keys"):
            assert rows[table] == [], table
        # The failed run is on the trail, as any failed run is.
        assert [e.kind for e in rt.audit.events("T", ALICE)] == ["run_start", "run_error"]
