"""Encryption at rest for checkpoint and write payloads (AES-256-GCM).

Unlike LangGraph's ``EncryptedSerializer``, reading is strict: with a key configured, a payload
that is not encrypted, or whose tag does not verify, raises instead of being accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from steward.errors import ConfigError, PayloadCorrupted

__all__ = ["KEY_HELP", "PREFIX", "Cipher", "decode_key"]

PREFIX = "aesgcm:"
_NONCE = 12
KEY_HELP = (
    "an encryption key is 32 random bytes given as 64 hex digits or URL-safe base64; "
    "make one with: python -c \"import secrets; print(secrets.token_hex(32))\""
)


def decode_key(key: str | bytes) -> bytes:
    """32 key bytes from the bytes themselves, 64 hex digits or URL-safe base64."""
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str):
        text = key.strip()
        raw = b""
        if len(text) == 64:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
        if not raw:
            try:
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                raw = b""
    else:
        raise ConfigError(f"encryption_key must be str or bytes, got {type(key).__name__}: "
                          f"{KEY_HELP}.")
    if len(raw) != 32:
        raise ConfigError(f"encryption key has {len(raw)} bytes, expected 32: {KEY_HELP}.")
    return raw


def _associated(type_: str, aad: tuple[str, ...]) -> bytes:
    return "\x1f".join((type_, *aad)).encode()


class Cipher:
    """Seals ``(type, bytes)`` payloads.

    The type tag and the payload's place (``aad``: thread, namespace, checkpoint, channel and
    version, or the write's task and index) are authenticated with the data, so a ciphertext
    moved to another row, thread or version fails to open instead of being read as if it
    belonged there.
    """

    def __init__(self, key: str | bytes) -> None:
        self._key = decode_key(key)
        self._aead = AESGCM(self._key)
        # A fingerprint lets the runtime tell a wrong key from tampering before reading data.
        self.fingerprint = hmac.new(self._key, b"steward key check v1",
                                    hashlib.sha256).hexdigest()[:32]

    def seal(self, type_: str, data: bytes, aad: tuple[str, ...] = ()) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        return PREFIX + type_, nonce + self._aead.encrypt(nonce, data, _associated(type_, aad))

    def open(self, type_: str, blob: bytes, where: str,
             aad: tuple[str, ...] = ()) -> tuple[str, bytes]:
        if not type_.startswith(PREFIX):
            raise PayloadCorrupted(
                f"{where} is stored unencrypted but this runtime requires encryption: it was "
                "written without a key or planted in the database. Restore it from a backup or "
                "delete the thread."
            )
        inner = type_[len(PREFIX):]
        try:
            return inner, self._aead.decrypt(blob[:_NONCE], blob[_NONCE:],
                                             _associated(inner, aad))
        except (InvalidTag, ValueError) as exc:
            raise PayloadCorrupted(
                f"{where} failed authentication: it was altered, or moved from another row, "
                "after it was written. Restore it from a backup or delete the thread."
            ) from exc
