"""Envelope encryption: a data key per thread, and per person whose memories are kept, wrapped
by a master key (a :class:`~steward.storage.keys.DataKeyProvider`: AWS KMS) and stored beside
the threads; every payload of a thread is sealed with its thread's key.

This part owns two tables: ``steward_thread_keys`` (one wrapped key per thread, deleted with
the thread) and ``steward_subject_keys`` (one per tenant and person, for long-term memories
about that person; the person ``''`` holds the tenant's memories about no one). A key is made
by the first write that seals something with it, in that write's transaction: ``INSERT ...
ON CONFLICT DO NOTHING`` then read back, so two writers racing on a new thread end with one
key, and a write that fails leaves none. Each wrapped key is bound to an encryption context
naming its thread (or tenant and person) and the tenant, which the master key's service
checks on every unwrap: a wrapped key moved to another row does not open.

Unwrapped keys are cached in memory for the provider's ``cache_ttl``, at most ``cache_size``
of them, so that a thread's writes after the first cost a dictionary look-up (the saver's
one-statement writes trust the cache: a key row only goes with a change of its thread row,
which their guard sees). Reads and the careful writes read the key row again, in a round trip
they make anyway where they can, and unwrap only a key they have not seen.

Deleting a thread or erasing a person deletes the wrapped key (crypto-shredding): what it
sealed can no longer be read anywhere -- a leftover row, a copy of the data tables -- and
reading it raises DataKeyDestroyed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steward.errors import ConfigError, PayloadCorrupted, StewardError, StorageError
from steward.storage.codec import Codec
from steward.storage.crypto import Cipher
from steward.storage.drivers import placeholders
from steward.storage.keys import DataKey, DataKeyProvider, check_cache
from steward.storage.migrations import ENVELOPE_KEYS, LAYOUT, Migration, Schema
from steward.storage.ops import Call, Op, Result, Stmt

__all__ = ["ENVELOPE", "SCHEMA", "Envelope"]

# What steward_meta's key check holds for a database whose payloads are sealed with data keys
# (a single key's is its fingerprint): the master key may change, the kind may not.
ENVELOPE = ENVELOPE_KEYS

_KEYS = """
CREATE TABLE steward_thread_keys (
    thread_id TEXT PRIMARY KEY,
    tenant TEXT,
    master TEXT NOT NULL,
    wrapped {blob} NOT NULL,
    created_at {real} NOT NULL
);
CREATE TABLE steward_subject_keys (
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    master TEXT NOT NULL,
    wrapped {blob} NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (tenant, subject)
)
"""
# The thread keys go with their thread through ``Codec.forget_threads`` (which also drops them
# from the cache), not as one of the parts' thread tables.
SCHEMA = Schema("keys", (Migration(_KEYS, LAYOUT),))

_THREAD_KEY = "SELECT tenant, wrapped FROM steward_thread_keys WHERE thread_id = {}"
_THREAD_KEYS = ("SELECT thread_id, tenant, wrapped FROM steward_thread_keys WHERE thread_id IN "
                "({})")
_CHUNK = 500  # ids per statement when reading many keys
_SUBJECT_KEY = ("SELECT subject, wrapped FROM steward_subject_keys WHERE tenant = ? AND "
                "subject IN ({})")
_NEW_THREAD_KEY = ("INSERT INTO steward_thread_keys (thread_id, tenant, master, wrapped, "
                   "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING")
_NEW_SUBJECT_KEY = ("INSERT INTO steward_subject_keys (tenant, subject, master, wrapped, "
                    "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, subject) DO NOTHING")

Scope = tuple[str, ...]  # ("thread", thread_id) or ("subject", tenant, person)


@dataclass(slots=True)
class _Entry:
    wrapped: bytes
    codec: Codec
    expires: float  # time.monotonic()
    confirmed: bool  # read back from a committed row (a new key is not, until then)


def thread_context(tid: str, tenant: str | None) -> dict[str, str]:
    """The encryption context of a thread's data key (what a key policy can condition on)."""
    context = {"steward:scope": "thread", "steward:thread": tid}
    if tenant:
        context["steward:tenant"] = tenant
    return context


def subject_context(tenant: str, subject: str) -> dict[str, str]:
    """The encryption context of the data key of a tenant's memories about ``subject``. The
    person is named by a digest, not their address: KMS logs encryption contexts in clear
    (CloudTrail), where no erasure reaches."""
    context = {"steward:scope": "memory", "steward:tenant": tenant}
    if subject:
        context["steward:subject"] = hashlib.sha256(
            f"{tenant}\x1f{subject}".encode()).hexdigest()[:32]
    return context


def _label(scope: Scope) -> str:
    if scope[0] == "thread":
        return f"thread {scope[1]!r}"
    return f"the memories of tenant {scope[1]!r} about {scope[2]!r}" if scope[2] else \
        f"the memories of tenant {scope[1]!r} about no one"


class Envelope:
    """The data keys of one database, as operations (sans-IO: the provider is called through
    :class:`~steward.storage.ops.Call`), with the cache of unwrapped keys."""

    def __init__(self, provider: DataKeyProvider) -> None:
        check_cache(provider)  # whichever way the provider came in
        self.provider = provider
        self._entries: OrderedDict[Scope, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    # -- the cache ---------------------------------------------------------------------------

    def cached(self, scope: Scope) -> Codec | None:
        """The scope's codec if its key is in the cache, confirmed and fresh (no I/O)."""
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or not entry.confirmed or entry.expires <= time.monotonic():
                return None
            self._entries.move_to_end(scope)
            return entry.codec

    def _seen(self, scope: Scope, wrapped: bytes) -> Codec | None:
        """The codec of a wrapped key already unwrapped and still fresh, now confirmed (it was
        read from a row)."""
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or entry.wrapped != wrapped or entry.expires <= time.monotonic():
                return None
            entry.confirmed = True
            self._entries.move_to_end(scope)
            return entry.codec

    def _keep(self, scope: Scope, wrapped: bytes, plaintext: bytes, confirmed: bool) -> Codec:
        if len(plaintext) != 32:
            raise ConfigError(f"{self.provider.name} gave a data key of {len(plaintext)} bytes "
                              "for " + _label(scope) + ": AES-256 needs 32.")
        codec = Codec(Cipher(plaintext), owner=_label(scope))
        ttl = float(self.provider.cache_ttl)
        with self._lock:
            if ttl > 0:
                self._entries[scope] = _Entry(wrapped, codec, time.monotonic() + ttl, confirmed)
                self._entries.move_to_end(scope)
                while len(self._entries) > self.provider.cache_size:
                    self._entries.popitem(last=False)
            else:
                self._entries.pop(scope, None)
        return codec

    def confirm(self, made: Iterable[tuple[Scope, bytes]]) -> None:
        """Trust keys a committed write made (until then a write that rolls back could leave
        a cached key no row holds)."""
        with self._lock:
            for scope, wrapped in made:
                entry = self._entries.get(scope)
                if entry is not None and entry.wrapped == wrapped:
                    entry.confirmed = True

    def forget(self, scopes: Iterable[Scope] | None = None) -> None:
        """Drop cached keys: the given scopes', or all of them."""
        with self._lock:
            if scopes is None:
                self._entries.clear()
            for scope in scopes or ():
                self._entries.pop(scope, None)

    # -- calling the provider (inside a Call: a worker thread under an async driver) ------------

    def _call(self, scope: Scope, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (ConfigError, StorageError, PayloadCorrupted) as exc:
            raise type(exc)(f"{what} {_label(scope)}: {exc}") from exc
        except StewardError:
            raise
        except Exception as exc:
            raise StorageError(f"{self.provider.name} failed to {what} {_label(scope)}: "
                               f"{exc!r}. Retry later.") from exc

    def _unwrap_op(self, scope: Scope, context: Mapping[str, str], wrapped: bytes) -> Op[Codec]:
        seen = self._seen(scope, wrapped)
        if seen is not None:
            return seen
        plaintext = yield Call(lambda: self._call(
            scope, "unwrap the data key of", lambda: self.provider.unwrap(wrapped, context)))
        return self._keep(scope, wrapped, plaintext, confirmed=True)

    def _generate(self, scope: Scope, context: Mapping[str, str]) -> Call:
        return Call(lambda: self._call(scope, "make the data key of",
                                       lambda: self.provider.generate(context)))

    def _key_op(self, scope: Scope, context: Mapping[str, str], row: Sequence[Any] | None, *,
                create: bool, store: Callable[[DataKey], Stmt], read: Stmt,
                made: list[tuple[Scope, bytes]] | None = None) -> Op[Codec]:
        """The codec of a scope's key from its row, ``(tenant or subject, wrapped)``. Without
        one and without ``create``: a codec that refuses every payload (its key is gone, or
        there never was one). With ``create``: a new key, stored by ``store`` -- unless
        another writer stored one first, which ``read`` reads back, and which is then used
        (``made`` notes a key this write made, for ``confirm`` once it has committed)."""
        if row is not None:
            return (yield from self._unwrap_op(scope, context, bytes(row[1])))
        if not create:
            return Codec(None, gone=_label(scope))
        new: DataKey = yield self._generate(scope, context)
        yield store(new)
        stored = (yield read).one()
        assert stored is not None
        if bytes(stored[1]) != new.wrapped:  # another writer made the key first
            return (yield from self._unwrap_op(scope, context, bytes(stored[1])))
        if made is not None:
            made.append((scope, new.wrapped))
        return self._keep(scope, new.wrapped, new.plaintext, confirmed=False)

    # -- threads -------------------------------------------------------------------------------

    @staticmethod
    def thread_key_stmt(tid: str) -> Stmt:
        """Reads a thread's wrapped key, to batch with other reads (``thread_op(found=)``)."""
        return Stmt(_THREAD_KEY.format("?"), (tid,))

    def thread_op(self, tid: str, tenant: str | None, *, create: bool,
                  found: Result | None = None,
                  made: list[tuple[Scope, bytes]] | None = None) -> Op[Codec]:
        """The codec of a thread's data key, read from its row (``found``: that row, read
        already); with ``create``, a new key if the thread has none yet (``tenant``: the
        thread's, for the encryption context; ``made`` notes it, for ``confirm`` once the
        write has committed). Without a key and without ``create``: a codec that refuses
        every payload (DataKeyDestroyed for a sealed one)."""
        row = (found if found is not None else (yield self.thread_key_stmt(tid))).one()
        return (yield from self._thread_op(tid, row, tenant, create=create, made=made))

    def _thread_op(self, tid: str, row: Sequence[Any] | None, tenant: str | None, *,
                   create: bool, made: list[tuple[Scope, bytes]] | None = None) -> Op[Codec]:
        # A stored key's context names the tenant it was made with (its row's).
        context = thread_context(tid, row[0] if row is not None else tenant)
        return (yield from self._key_op(
            ("thread", tid), context, row, create=create, made=made,
            store=lambda new: Stmt(_NEW_THREAD_KEY, (tid, tenant, new.master, new.wrapped,
                                                     time.time())),
            read=self.thread_key_stmt(tid)))

    def threads_op(self, tids: Iterable[str]) -> Op[dict[str, Codec]]:
        """The codecs of several threads' keys (a listing across threads), read in one round
        trip (in chunks of at most ``_CHUNK`` ids: a statement's parameters are bounded)."""
        ids = sorted(set(tids))
        if not ids:
            return {}
        chunks = [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
        results = yield tuple(Stmt(_THREAD_KEYS.format(placeholders(chunk)), chunk)
                              for chunk in chunks)
        found = {str(r[0]): r[1:] for result in results for r in result.rows}
        out: dict[str, Codec] = {}
        for tid in ids:
            out[tid] = yield from self._thread_op(tid, found.get(tid), None, create=False)
        return out

    def delete_threads_op(self, tids: Iterable[str]) -> Op[None]:
        """Destroy threads' keys (crypto-shredding): what they sealed is unreadable anywhere."""
        ids = sorted(set(tids))
        if ids:
            self.forget(("thread", tid) for tid in ids)
            yield Stmt(f"DELETE FROM steward_thread_keys WHERE thread_id IN "
                       f"({placeholders(ids)})", ids, wait=False)

    # -- people's memories ---------------------------------------------------------------------

    def subjects_op(self, tenant: str, subjects: Iterable[str], *,
                    create: bool = False) -> Op[dict[str, Codec]]:
        """The codecs of a tenant's memory keys about ``subjects`` (``''``: about no one),
        one read; with ``create``, new keys for those without one."""
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        found = {str(r[0]): r for r in (yield Stmt(_SUBJECT_KEY.format(placeholders(wanted)),
                                                   (tenant, *wanted))).rows}
        out: dict[str, Codec] = {}
        for subject in wanted:
            out[subject] = yield from self._key_op(
                ("subject", tenant, subject), subject_context(tenant, subject),
                found.get(subject), create=create, store=_storing_subject(tenant, subject),
                read=Stmt(_SUBJECT_KEY.format("?"), (tenant, subject)))
        return out

    def delete_subject_op(self, tenant: str, subject: str) -> Op[int]:
        """Destroy the key of a tenant's memories about a person (crypto-shredding)."""
        self.forget([("subject", tenant, subject)])
        res = yield Stmt("DELETE FROM steward_subject_keys WHERE tenant = ? AND subject = ?",
                         (tenant, subject))
        return max(int(res.rowcount), 0)


def _storing_subject(tenant: str, subject: str) -> Callable[[DataKey], Stmt]:
    """How a new key of a tenant's memories about ``subject`` is stored."""
    return lambda new: Stmt(_NEW_SUBJECT_KEY, (tenant, subject, new.master, new.wrapped,
                                               time.time()))
