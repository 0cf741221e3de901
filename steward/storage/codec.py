"""Turning values into stored payloads and back: the saver's serde, then optional encryption.

Payloads are ``(type, bytes)`` pairs. The serde is passed in on every call because
``with_allowlist`` gives a saver copy a stricter serde while sharing everything else.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid
from typing import Any

import orjson
from langgraph.checkpoint.serde.base import SerializerProtocol

from steward.errors import ConfigError
from steward.storage.crypto import PREFIX, Cipher


class Codec:
    def __init__(self, cipher: Cipher | None) -> None:
        self.cipher = cipher

    def dump(self, serde: SerializerProtocol, value: Any,
             aad: tuple[str, ...] = ()) -> tuple[str, bytes]:
        """``aad`` names the payload's place, so that it cannot be read anywhere else."""
        type_, data = serde.dumps_typed(value)
        if self.cipher is not None:
            return self.cipher.seal(type_, data, aad)
        return type_, data

    def load(self, serde: SerializerProtocol, type_: str, blob: bytes | None, where: str,
             aad: tuple[str, ...] = ()) -> Any:
        data = bytes(blob) if blob is not None else b""
        if self.cipher is not None:
            type_, data = self.cipher.open(type_, data, where, aad)
        elif type_.startswith(PREFIX):
            raise ConfigError(
                f"{where} is encrypted but this runtime has no key: open it with "
                "steward.open(url, encryption_key=...) or set STEWARD_ENCRYPTION_KEY."
            )
        return serde.loads_typed((type_, data))

    def move(self, type_: str, blob: bytes, where: str, old: tuple[str, ...],
             new: tuple[str, ...]) -> tuple[str, bytes]:
        """Re-seal a stored payload for a new place (copy_thread); plaintext passes as is."""
        if self.cipher is None:
            return type_, blob
        inner, data = self.cipher.open(type_, bytes(blob), where, old)
        return self.cipher.seal(inner, data, new)


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
