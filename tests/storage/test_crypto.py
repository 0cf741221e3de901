"""The payload cipher (steward.storage.crypto): AES-GCM sealing bound to a row's place, and
refusal of any altered, moved, retagged or foreign-key payload, as properties. No database."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from steward import ConfigError, PayloadCorrupted
from steward.storage.crypto import PREFIX, Cipher

PROPS = settings(max_examples=200, deadline=None)

keys = st.binary(min_size=32, max_size=32)
type_tags = st.sampled_from(["msgpack", "json", "null", "bytes", PREFIX + "msgpack"]) \
    | st.text(max_size=20)
payloads = st.binary(max_size=256)


@PROPS
@given(keys, type_tags, payloads)
def test_cipher_round_trip(key: bytes, type_: str, data: bytes) -> None:
    cipher = Cipher(key)
    stype, blob = cipher.seal(type_, data)
    assert stype == PREFIX + type_
    assert len(data) < 8 or data not in blob  # shorter runs may occur by chance
    assert cipher.open(stype, blob, "here") == (type_, data)
    assert cipher.seal(type_, data)[1] != blob  # a fresh nonce on every seal


places = st.lists(st.text(max_size=12), max_size=5).map(tuple)


@PROPS
@given(keys, type_tags, payloads, places, places)
def test_cipher_binds_a_payload_to_its_place(key: bytes, type_: str, data: bytes,
                                             here: tuple[str, ...],
                                             there: tuple[str, ...]) -> None:
    cipher = Cipher(key)
    stype, blob = cipher.seal(type_, data, here)
    assert cipher.open(stype, blob, "here", here) == (type_, data)
    if there != here:
        with pytest.raises(PayloadCorrupted, match="moved from another row"):
            cipher.open(stype, blob, "there", there)


@PROPS
@given(keys, type_tags, payloads, st.data())
def test_cipher_refuses_any_modified_byte(key: bytes, type_: str, data: bytes,
                                          draw: st.DataObject) -> None:
    cipher = Cipher(key)
    stype, blob = cipher.seal(type_, data)
    pos = draw.draw(st.integers(0, len(blob) - 1), label="position")
    flip = draw.draw(st.integers(1, 255), label="xor")
    forged = bytearray(blob)
    forged[pos] ^= flip
    with pytest.raises(PayloadCorrupted, match="altered"):
        cipher.open(stype, bytes(forged), "here")
    cut = draw.draw(st.integers(0, len(blob) - 1), label="truncated length")
    with pytest.raises(PayloadCorrupted):
        cipher.open(stype, blob[:cut], "here")
    with pytest.raises(PayloadCorrupted):
        cipher.open(stype, blob + draw.draw(st.binary(min_size=1, max_size=4)), "here")


@PROPS
@given(keys, type_tags, type_tags, payloads)
def test_cipher_refuses_a_changed_type_tag(key: bytes, type_: str, other: str,
                                           data: bytes) -> None:
    assume(other != type_)
    cipher = Cipher(key)
    _, blob = cipher.seal(type_, data)
    with pytest.raises(PayloadCorrupted, match="altered"):
        cipher.open(PREFIX + other, blob, "here")
    with pytest.raises(PayloadCorrupted, match="unencrypted"):
        cipher.open(type_ if not type_.startswith(PREFIX) else "msgpack", blob, "here")


@PROPS
@given(keys, keys, type_tags, payloads)
def test_cipher_refuses_another_key(key: bytes, other: bytes, type_: str, data: bytes) -> None:
    assume(key != other)
    stype, blob = Cipher(key).seal(type_, data)
    with pytest.raises(PayloadCorrupted):
        Cipher(other).open(stype, blob, "here")
    assert Cipher(key).fingerprint != Cipher(other).fingerprint


@PROPS
@given(keys)
def test_cipher_fingerprint_is_stable_across_key_forms(key: bytes) -> None:
    forms: list[str | bytes] = [
        key, key.hex(), key.hex().upper(), f"  {key.hex()}\n",
        base64.urlsafe_b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("="),
        base64.b64encode(key).decode(),
    ]
    prints = {Cipher(form).fingerprint for form in forms}
    assert len(prints) == 1
    fingerprint = prints.pop()
    assert key.hex() not in fingerprint and len(fingerprint) == 32
    stype, blob = Cipher(forms[1]).seal("msgpack", b"data")
    for form in forms:  # any form of the key opens what another form sealed
        assert Cipher(form).open(stype, blob, "here") == ("msgpack", b"data")


@PROPS
@given(st.binary(max_size=64).filter(lambda b: len(b) != 32)
       | st.text(max_size=80).filter(lambda s: len(s.strip()) not in (43, 44, 64)))
def test_cipher_refuses_malformed_keys(key: str | bytes) -> None:
    with pytest.raises(ConfigError, match=r"secrets\.token_hex\(32\)"):
        Cipher(key)
