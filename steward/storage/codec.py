"""Turning values into stored payloads and back: the saver's serde, then optional encryption.

Payloads are ``(type, bytes)`` pairs. The serde is passed in on every call because
``with_allowlist`` gives a saver copy a stricter serde while sharing everything else.

A codec seals with one cipher (one key for the database), or, with per-thread data keys
(``steward.storage.envelope``), it is the base the operations get each thread's codec from
(``thread_op``, ``subjects_op``): a base codec that was not given its thread's key refuses to
seal or open anything, so no payload is ever written in the clear by mistake.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from langgraph.checkpoint.serde.base import SerializerProtocol

from steward.errors import ConfigError, DataKeyDestroyed, PayloadCorrupted
from steward.storage.crypto import PREFIX, Cipher
from steward.storage.ops import Op, Result, Stmt

if TYPE_CHECKING:
    from steward.storage.envelope import Envelope


class Codec:
    """``cipher``: the one key's; ``keys``: the data keys this base codec hands out per thread
    or person; ``gone``: what a codec whose data key was destroyed stood for."""

    def __init__(self, cipher: Cipher | None, keys: Envelope | None = None, *,
                 gone: str | None = None, owner: str | None = None) -> None:
        self.cipher = cipher
        self.keys = keys
        self.gone = gone
        self.owner = owner  # whose data key ``cipher`` is (per-thread data keys)
        self.sealed = cipher is not None or keys is not None or gone is not None

    # -- the codec of a thread or a person (per-thread data keys; else this codec) -----------

    def thread(self, tid: str) -> Codec | None:
        """The thread's codec when it costs no I/O: this one, or its data key's from the cache
        (None: the key must be read, with ``thread_op``)."""
        return self if self.keys is None else self.keys.cached(("thread", tid))

    def thread_key_stmt(self, tid: str) -> Stmt | None:
        """The read of the thread's wrapped key, to batch with others (None: no data keys)."""
        return None if self.keys is None else self.keys.thread_key_stmt(tid)

    def thread_op(self, tid: str, tenant: str | None, *, create: bool,
                  found: Result | None = None,
                  made: list[tuple[tuple[str, ...], bytes]] | None = None) -> Op[Codec]:
        """The thread's codec (see ``Envelope.thread_op``); this one without data keys."""
        if self.keys is None:
            return self
        return (yield from self.keys.thread_op(tid, tenant, create=create, found=found,
                                               made=made))

    def threads_op(self, tids: Iterable[str]) -> Op[Mapping[str, Codec]]:
        """The codecs of several threads."""
        if self.keys is None:
            return collections.defaultdict(lambda: self)
        return (yield from self.keys.threads_op(tids))

    def subjects_op(self, tenant: str, subjects: Iterable[str], *,
                    create: bool = False) -> Op[Mapping[str, Codec]]:
        """The codecs of a tenant's memories about each of ``subjects`` (``''``: no one)."""
        if self.keys is None:
            return collections.defaultdict(lambda: self)
        return (yield from self.keys.subjects_op(tenant, subjects, create=create))

    def forget_threads(self, tids: Iterable[str]) -> Op[None]:
        """Destroy the threads' data keys (crypto-shredding), if they have any."""
        if self.keys is not None:
            yield from self.keys.delete_threads_op(tids)

    def forget_subject(self, tenant: str, subject: str) -> Op[int]:
        """Destroy the data key of a tenant's memories about ``subject``; returns 1 if there
        was one."""
        if self.keys is None:
            return 0
        return (yield from self.keys.delete_subject_op(tenant, subject))

    # -- payloads ------------------------------------------------------------------------------

    def _unbound(self) -> AssertionError:
        return AssertionError("a payload reached the base codec of per-thread data keys: the "
                              "operation must seal it with its thread's codec (thread_op)")

    def dump(self, serde: SerializerProtocol, value: Any,
             aad: tuple[str, ...] = ()) -> tuple[str, bytes]:
        """``aad`` names the payload's place, so that it cannot be read anywhere else."""
        type_, data = serde.dumps_typed(value)
        if self.cipher is not None:
            return self.cipher.seal(type_, data, aad)
        if self.sealed:
            raise self._unbound()
        return type_, data

    def load(self, serde: SerializerProtocol, type_: str, blob: bytes | None, where: str,
             aad: tuple[str, ...] = ()) -> Any:
        data = bytes(blob) if blob is not None else b""
        if self.cipher is not None:
            try:
                type_, data = self.cipher.open(type_, data, where, aad)
            except PayloadCorrupted as exc:
                if self.owner is None or not type_.startswith(PREFIX):
                    raise
                raise PayloadCorrupted(
                    f"{where} does not open with the data key of {self.owner}: it was altered "
                    "or moved from another row, or it is a copy sealed with an earlier key of "
                    f"{self.owner} that deleting or erasing it destroyed (crypto-shredding). "
                    "Restore it from a backup, or delete it.") from exc
        elif self.gone is not None:
            if not type_.startswith(PREFIX):
                # Under data keys every payload is sealed: one in the clear was planted.
                raise PayloadCorrupted(
                    f"{where} is stored unencrypted but {self.gone} is sealed with a data key: "
                    "it was planted in the database. Restore it from a backup, or delete it.")
            raise DataKeyDestroyed(
                f"{where} is sealed with the data key of {self.gone}, which no longer exists: "
                "deleting the thread or erasing the person destroyed it (crypto-shredding), "
                "so this copy can never be read. Delete the leftover rows.")
        elif self.keys is not None:
            raise self._unbound()
        elif type_.startswith(PREFIX):
            raise ConfigError(
                f"{where} is encrypted but this runtime has no key: open it with "
                "steward.open(url, encryption_key=...) or set STEWARD_ENCRYPTION_KEY."
            )
        return serde.loads_typed((type_, data))

    def move(self, type_: str, blob: bytes, where: str, old: tuple[str, ...],
             new: tuple[str, ...], into: Codec | None = None) -> tuple[str, bytes]:
        """Re-seal a stored payload for a new place (copy_thread), under ``into``'s key (default
        this codec's); plaintext passes as is."""
        target = into if into is not None else self
        if not self.sealed and not target.sealed:
            return type_, blob
        inner, data = self.load(_RAW, type_, blob, where, old)  # raises what a read would
        if target.cipher is None:
            raise target._unbound()
        return target.cipher.seal(inner, data, new)


class _Raw:
    """A serde that hands back what it is given: ``move`` re-seals without decoding."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        type_, data = obj
        return str(type_), bytes(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return data


_RAW: Any = _Raw()


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return repr(value)


def dump_json(value: Any) -> str:
    """Metadata is stored as JSON (not serde) so that ``list(filter=...)`` can query it.
    orjson, as every write stores some (several times cheaper than the standard library);
    the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, default=_json_default,
                            option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=_json_default, separators=(",", ":"),
                          ensure_ascii=False)


def load_json(value: Any) -> Any:
    """SQLite hands JSON back as text, psycopg as parsed objects."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value
