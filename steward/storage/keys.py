"""Where encryption keys come from: what ``steward.open(url, encryption_key=...)`` accepts.

Two kinds of provider:

- a :class:`KeyProvider` gives one 32-byte key that seals every payload of the database, which
  is what ``encryption_key`` has always meant: :class:`StaticKey` (the key itself),
  :class:`EnvKey` (an environment variable) and :class:`FileKey` (a file, such as a mounted
  secret). Payloads are sealed exactly as before, so an existing database opens with the
  same key, however it is given.
- a :class:`DataKeyProvider` makes a data key per thread (and per person whose memories are
  kept), wrapped by a master key that never leaves its service -- envelope encryption:
  :class:`steward.storage.kms.KmsKeys` for AWS KMS. The wrapped keys are stored beside the
  threads (``steward.storage.envelope``); deleting one makes every copy of what it sealed
  unreadable (crypto-shredding).

``encryption_key`` also takes text naming a provider: ``"env:NAME"``, ``"file:/path"`` or
``"kms:<key id, alias or ARN>"`` (with ``$STEWARD_KMS_CONTEXT``'s extra encryption context,
if set); any other text is the key itself (64 hex digits or URL-safe
base64, neither of which holds a colon). ``$STEWARD_ENCRYPTION_KEY`` is read the same way, so a
deployment can say ``STEWARD_ENCRYPTION_KEY=kms:alias/steward``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from steward.errors import ConfigError, StewardError
from steward.storage.crypto import KEY_HELP, Cipher, decode_key

__all__ = ["DataKey", "DataKeyProvider", "EnvKey", "FileKey", "KeyProvider", "KeySource",
           "StaticKey", "key_source"]

KEY_ENV = "STEWARD_ENCRYPTION_KEY"
_SCHEMES = ("env:", "file:", "kms:")


@runtime_checkable
class KeyProvider(Protocol):
    """One key for every payload of the database: ``key()`` returns its 32 bytes. Asked
    once, when the runtime opens."""

    def key(self) -> bytes: ...


class DataKey(NamedTuple):
    """A new data key: its ``plaintext`` (32 bytes, kept only in memory), the same key
    ``wrapped`` by the master key (stored), and the ``master`` key that wrapped it (its ARN,
    for the record)."""

    plaintext: bytes
    wrapped: bytes
    master: str


@runtime_checkable
class DataKeyProvider(Protocol):
    """Envelope encryption: data keys made and unwrapped by a service that keeps the master
    key (AWS KMS). ``context`` is bound to the wrapped key (KMS's encryption context): the
    same context must be given to unwrap it, so a wrapped key moved to another thread fails.

    ``name`` says which master key, in messages; unwrapped keys stay in memory for
    ``cache_ttl`` seconds, at most ``cache_size`` of them. Both methods block (the runtime
    calls them from a worker thread in async code) and raise steward errors: ConfigError for
    what the operator must fix (access denied, unknown or disabled key), StorageError for a
    service that failed or could not be reached, PayloadCorrupted for a wrapped key that does
    not open."""

    name: str
    cache_ttl: float
    cache_size: int

    def generate(self, context: Mapping[str, str]) -> DataKey: ...

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes: ...


class StaticKey:
    """The key itself: 32 bytes, or 64 hex digits, or URL-safe base64 (checked now)."""

    def __init__(self, key: str | bytes) -> None:
        self._key = decode_key(key)

    def key(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return "StaticKey(<32 bytes>)"  # never the key


class EnvKey:
    """The key in an environment variable (64 hex digits or URL-safe base64), read when the
    runtime opens."""

    def __init__(self, name: str = KEY_ENV) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"EnvKey takes the name of an environment variable, got {name!r}.")
        self.name = name

    def key(self) -> bytes:
        value = os.environ.get(self.name, "").strip()
        if not value:
            raise ConfigError(f"the environment variable {self.name} holds no encryption key: "
                              f"set it to one ({KEY_HELP}).")
        try:
            return decode_key(value)
        except ConfigError as exc:
            raise ConfigError(f"the environment variable {self.name} does not hold a valid "
                              f"encryption key: {exc}") from None

    def __repr__(self) -> str:
        return f"EnvKey({self.name!r})"


class FileKey:
    """The key in a file: 64 hex digits or URL-safe base64 as text (surrounding whitespace
    ignored), or exactly 32 raw bytes; read when the runtime opens.

    A file that other users may write is refused: whoever can write it can replace the key
    and read what is sealed afterwards. Other users *reading* it is allowed, because container
    secret mounts are often world-readable (Kubernetes' default mode is 0644); restrict it
    where you can (``chmod 600``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigError(f"FileKey takes the path of a key file, got {path!r}.")
        self.path = Path(path)

    def key(self) -> bytes:
        where = str(self.path)
        try:
            mode = self.path.stat().st_mode
            data = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the encryption key file {where}: {exc.strerror or exc}. Create "
                "it with: python -c \"import secrets; print(secrets.token_hex(32))\" > "
                f"{where} && chmod 600 {where}") from exc
        if os.name == "posix" and mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigError(
                f"the encryption key file {where} may be written by other users (mode "
                f"{stat.S_IMODE(mode):04o}), who could replace the key: chmod 600 {where}.")
        if len(data) == 32:
            return data
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError:
            text = ""
        try:
            return decode_key(text)
        except ConfigError:
            raise ConfigError(f"the encryption key file {where} does not hold a key "
                              f"({len(data)} bytes): {KEY_HELP}.") from None

    def __repr__(self) -> str:
        return f"FileKey({str(self.path)!r})"


KeySource = str | bytes | KeyProvider | DataKeyProvider


def key_source(value: object) -> Cipher | DataKeyProvider | None:
    """What ``encryption_key`` (or ``$STEWARD_ENCRYPTION_KEY``, when it is None) names: the
    cipher of one key, a data-key provider, or None (no encryption). Checked now: a bad key,
    file or variable raises ConfigError before any database is touched."""
    if value is None:
        value = os.environ.get(KEY_ENV) or None
        if value is None:
            return None
    if isinstance(value, DataKeyProvider):
        check_cache(value)  # now, before any database is touched
        return value
    if isinstance(value, KeyProvider):
        try:
            key = value.key()
        except StewardError:
            raise
        except Exception as exc:  # a vault client's error, a missing file, ...
            raise ConfigError(f"the key provider {type(value).__name__} failed to give the "
                              f"encryption key: {exc!r}. Fix what it reads the key from, or "
                              "pass the key itself as encryption_key.") from exc
        return Cipher(key)
    if isinstance(value, str) and value.strip().lower().startswith(_SCHEMES):
        scheme, _, rest = value.strip().partition(":")
        rest = rest.strip()
        if not rest:
            raise ConfigError(f"encryption_key {scheme}: names nothing: write "
                              f"'{scheme}:<{_WHAT[scheme.lower()]}>'.")
        scheme = scheme.lower()
        if scheme == "env":
            return Cipher(EnvKey(rest).key())
        if scheme == "file":
            return Cipher(FileKey(rest).key())
        from steward.storage.kms import KmsKeys

        return KmsKeys.from_text(rest)
    if isinstance(value, (str, bytes)):
        return Cipher(value)
    raise ConfigError(
        f"encryption_key must be a key (str or bytes), a KeyProvider (StaticKey, EnvKey, "
        f"FileKey), a DataKeyProvider (KmsKeys) or 'env:NAME' / 'file:PATH' / 'kms:KEY', got "
        f"{type(value).__name__}: {KEY_HELP}.")


_WHAT = {"env": "variable name", "file": "path", "kms": "key id, alias or ARN"}


def check_cache(provider: DataKeyProvider) -> None:
    """Refuse a provider whose cache settings make no sense (ConfigError)."""
    ttl, size = getattr(provider, "cache_ttl", None), getattr(provider, "cache_size", None)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0:
        raise ConfigError(f"{provider.name}: cache_ttl is seconds >= 0, got {ttl!r}.")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{provider.name}: cache_size is a whole number >= 1, got {size!r}.")
