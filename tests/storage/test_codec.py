"""The codec (steward.storage.codec): values round-trip exactly, sealed or plain, and the two
never mix, as properties. No database."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from steward import ConfigError, PayloadCorrupted
from steward.storage.codec import Codec
from steward.storage.crypto import PREFIX, Cipher

PROPS = settings(max_examples=200, deadline=None)
keys = st.binary(min_size=32, max_size=32)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=25,
)
SERDE = JsonPlusSerializer()


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not True, 0.0 is not -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


@PROPS
@given(json_values, st.none() | keys)
def test_codec_round_trip(value: Any, key: bytes | None) -> None:
    codec = Codec(Cipher(key) if key is not None else None)
    type_, blob = codec.dump(SERDE, value)
    assert type_.startswith(PREFIX) == (key is not None)
    assert same(codec.load(SERDE, type_, blob, "here"), value)


@PROPS
@given(json_values, keys)
def test_codec_refuses_to_mix_encrypted_and_plain(value: Any, key: bytes) -> None:
    sealed, plain = Codec(Cipher(key)), Codec(None)
    with pytest.raises(ConfigError, match="encryption_key"):
        plain.load(SERDE, *sealed.dump(SERDE, value), "here")
    with pytest.raises(PayloadCorrupted, match="unencrypted"):
        sealed.load(SERDE, *plain.dump(SERDE, value), "here")
