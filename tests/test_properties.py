"""Property tests of Steward's pure parts: URL masking, principals, the thread access rule,
the payload cipher and the codec. No database; each property runs a bounded number of cases.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

import steward
from steward import ConfigError, PayloadCorrupted, Principal, StewardError, ThreadAccessDenied
from steward.identity import Access, AccessRule, ThreadIdentity
from steward.storage.codec import Codec
from steward.storage.crypto import PREFIX, Cipher
from steward.storage.url import _SCHEMES as _URL_HELP
from steward.storage.url import DatabaseURL, mask, parse_url

PROPS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=50, deadline=None)

# -- database URLs -----------------------------------------------------------------------------

users = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True)
ports = st.none() | st.integers(1, 65535)
dbnames = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
# Passwords as written into a URL by hand: anything that does not end the userinfo part.
raw_passwords = st.text(
    st.characters(codec="ascii", categories=("L", "N", "P", "S"), exclude_characters="@/?#"),
    min_size=4, max_size=24)


def _pg_url(user: str, password: str, host: str, port: int | None, db: str) -> tuple[str, str]:
    """(url, the masked url it should print as)."""
    netloc_tail = f"{host}:{port}" if port else host
    return (f"postgresql://{user}:{password}@{netloc_tail}/{db}",
            f"postgresql://{user}:***@{netloc_tail}/{db}")


@PROPS
@given(users, st.text(min_size=4, max_size=24), hosts, ports, dbnames)
def test_mask_hides_a_percent_encoded_password(user: str, password: str, host: str,
                                               port: int | None, db: str) -> None:
    encoded = quote(password, safe="")
    url, expected = _pg_url(user, encoded, host, port, db)
    assume(password not in expected and encoded not in expected)
    masked = mask(url)
    assert masked == expected  # user, host, port and database kept; only the password goes
    assert password not in masked and encoded not in masked
    parsed = parse_url(url)
    assert parsed == DatabaseURL("postgres", url, expected)


@PROPS
@given(users, raw_passwords, hosts, ports, dbnames, st.sampled_from(["", "?password="]))
def test_mask_hides_a_raw_password(user: str, password: str, host: str, port: int | None,
                                   db: str, query: str) -> None:
    url, expected = _pg_url(user, password, host, port, db)
    if query:  # libpq also takes the password as a query parameter
        # A bracket makes urlsplit raise, and that fallback leaves the query unmasked: see
        # test_a_query_password_is_masked_when_urlsplit_fails.
        assume("[" not in password and "]" not in password)
        url, expected = url + query + quote(password, safe=""), expected + query + "***"
    assume(password not in expected)
    masked = mask(url)
    assert masked == expected
    assert password not in masked
    assert parse_url(url).masked == expected


# Only schemes urlsplit recognises: with any other the URL goes unmasked, see
# test_a_mistyped_url_does_not_print_its_password.
schemes = st.sampled_from(["sqlite", "SQLite", "postgresql", "postgres", "postgresql+psycopg",
                           "POSTGRESQL", "mysql", "http"]) \
    | st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,7}", fullmatch=True)
paths = st.sampled_from(["", "/", "/:memory:", "/x.db"]) | st.text(max_size=12).map("/{}".format)


@st.composite
def url_like(draw: st.DrawFn) -> tuple[str, str]:
    """(a URL-shaped string, the password in it); the password stays out of the other parts."""
    password = draw(raw_passwords)
    user = draw(users | st.just(""))
    # No ':' in what ends up in the netloc: a bad port is test_a_bad_port_is_a_config_error.
    host = draw(hosts | st.just("") | st.text(max_size=6).filter(lambda h: ":" not in h))
    port = draw(st.just("") | st.integers(1, 65535).map(lambda p: f":{p}"))
    url = f"{draw(schemes)}://{user}:{password}@{host}{port}{draw(paths)}"
    assume(url.count(password) == 1)
    return url, password


def _parse_or_config_error(url: object) -> DatabaseURL | ConfigError:
    try:
        return parse_url(url)
    except ConfigError as exc:
        return exc


@PROPS
@given(st.text(max_size=40) | st.binary(max_size=20) | st.integers() | st.none()
       | st.lists(st.text(max_size=3), max_size=2))
def test_parse_url_of_garbage_returns_or_raises_config_error(url: object) -> None:
    result = _parse_or_config_error(url)  # any other exception fails the test
    if isinstance(result, DatabaseURL):
        assert result.backend in ("sqlite", "postgres")
        assert isinstance(url, str) and "://" in url


@PROPS
@given(url_like())
def test_parse_url_errors_never_show_the_password(case: tuple[str, str]) -> None:
    url, password = case
    assume(password not in _URL_HELP)  # the message's own example shows 'user:pass@host/db'
    result = _parse_or_config_error(url)
    if isinstance(result, ConfigError):
        assert password not in str(result)
        assert "sqlite://" in str(result) or "postgresql://" in str(result)  # says what to use
    else:
        assert password not in result.masked


@pytest.mark.parametrize("url", ["postgresql://u:s3cret-pw@host:abc/db",
                                 "postgresql://u:s3cret-pw@host:99999/db"])
def test_a_bad_port_is_a_config_error(url: str) -> None:
    # libpq is the judge of what a PostgreSQL URL may hold (multiple hosts, odd passwords):
    # a bad port is refused when connecting, as a ConfigError naming the masked URL.
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL") as info:
        steward.open(url)
    assert "s3cret-pw" not in str(info.value) and "u:***@" in str(info.value)


@pytest.mark.parametrize("url", ["postgresql:/alice:s3cret-pw@db.example/app",
                                 "postgresql:alice:s3cret-pw@db.example/app",
                                 "postgresql//alice:s3cret-pw@db.example/app",
                                 "postgres_db://alice:s3cret-pw@db.example/app",
                                 "postgresql ://alice:s3cret-pw@db.example/app",
                                 "://alice:s3cret-pw@db.example/app"])
def test_a_mistyped_url_does_not_print_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url)
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql://[::1/app?password=s3cret-pw",
                                 "postgresql://alice@db]/app?password=s3cret-pw",
                                 "postgresql://alice:pa[ss@db/app?password=s3cret-pw"])
def test_a_query_password_is_masked_when_urlsplit_fails(url: str) -> None:
    assert "s3cret-pw" not in mask(url)


def test_a_non_string_url_does_not_print_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(b"postgresql://alice:s3cret-pw@db.example/app")
    assert "s3cret-pw" not in str(info.value)


# -- principals --------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=30)
role_sets = st.frozensets(st.text(max_size=12), max_size=5)
kinds = st.sampled_from(["user", "service"])
principals = st.builds(Principal, id=names, tenant=names, roles=role_sets, kind=kinds)


@PROPS
@given(principals)
def test_principal_round_trips_through_its_dict(p: Principal) -> None:
    as_dict = p.to_dict()
    assert Principal.parse(as_dict) == p
    assert hash(Principal.parse(as_dict)) == hash(p)
    assert Principal.parse(p) is p
    for collection in (list, tuple, set, frozenset):  # any collection of roles will do
        assert Principal.parse({**as_dict, "roles": collection(p.roles)}) == p


@PROPS
@given(names, names, role_sets)
def test_principal_dict_without_kind_is_a_user(pid: str, tenant: str,
                                               roles: frozenset[str]) -> None:
    p = Principal.parse({"id": pid, "tenant": tenant, "roles": sorted(roles)})
    assert (p.id, p.tenant, p.roles, p.kind) == (pid, tenant, roles, "user")


non_strings = st.integers() | st.none() | st.binary(max_size=3) | st.floats(allow_nan=False) \
    | st.lists(st.text(max_size=2), max_size=1)


@st.composite
def invalid_principal_dicts(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(principals).to_dict()
    how = draw(st.sampled_from([
        "missing id", "missing tenant", "empty id", "empty tenant", "too long id",
        "non-string id", "non-string tenant", "non-string role", "roles a string",
        "roles not a collection", "bad kind", "extra key",
    ]))
    field_ = "tenant" if "tenant" in how else "id"
    if how.startswith("missing"):
        del base[field_]
    elif how.startswith("empty"):
        base[field_] = ""
    elif how == "too long id":
        base["id"] = "x" * 513
    elif how.startswith("non-string") and how.endswith("role"):
        base["roles"] = [*base["roles"], draw(non_strings)]
    elif how.startswith("non-string"):
        base[field_] = draw(non_strings)
    elif how == "roles a string":
        base["roles"] = draw(st.text(max_size=10))
    elif how == "roles not a collection":
        base["roles"] = draw(st.integers() | st.none() | st.dictionaries(st.text(), st.text()))
    elif how == "bad kind":
        base["kind"] = draw(st.text(max_size=10).filter(lambda k: k not in ("user", "service")))
    else:
        extra = draw(st.text(min_size=1, max_size=10).filter(
            lambda k: k not in ("id", "tenant", "roles", "kind")))
        base[extra] = draw(st.text(max_size=5) | st.integers())
    return base


@PROPS
@given(invalid_principal_dicts())
def test_invalid_principal_dicts_raise_config_error(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="principal"):
        Principal.parse(data)


@PROPS
@given(st.integers() | st.text() | st.none() | st.lists(st.text(), max_size=3))
def test_a_principal_that_is_not_a_mapping_raises_config_error(value: Any) -> None:
    with pytest.raises(ConfigError, match="principal"):
        Principal.parse(value)


@FEW
@given(principals, st.sampled_from(["id", "tenant", "roles", "kind", "other"]),
       st.text(max_size=5))
def test_principal_is_immutable(p: Principal, attr: str, value: str) -> None:
    before = p.to_dict()
    # A field raises dataclasses.FrozenInstanceError (an AttributeError). A new attribute
    # raises TypeError on CPython 3.11 (frozen + slots dataclass quirk), AttributeError later.
    with pytest.raises(AttributeError if attr != "other" else (AttributeError, TypeError)):
        setattr(p, attr, value)
    with pytest.raises(AttributeError):
        p.roles.add(value)  # type: ignore[attr-defined]
    assert p.to_dict() == before
    assert isinstance(dataclasses.FrozenInstanceError(), AttributeError)


# -- the thread access rule --------------------------------------------------------------------

ROLE_NAMES = ["support", "manager", "auditor", "admin", "intern"]
TENANTS = ["acme", "globex"]
IDS = ["alice", "bob", "carol"]
LEVEL_NAMES = {"read": 1, "write": 2, "admin": 3}  # the reference's own ladder

grants = st.dictionaries(st.sampled_from(ROLE_NAMES),
                         st.sampled_from(["read", "write", "admin", "READ", "Write", "ADMIN"]),
                         max_size=4)
actors = st.none() | st.builds(Principal, id=st.sampled_from(IDS),
                               tenant=st.sampled_from(TENANTS),
                               roles=st.frozensets(st.sampled_from(ROLE_NAMES), max_size=3))
threads = st.none() | st.builds(ThreadIdentity, thread_id=names,
                                tenant=st.none() | st.sampled_from(TENANTS),
                                owner=st.none() | st.sampled_from(IDS))
needs = st.sampled_from(["read", "write", "admin"])


def reference_allows(roles: dict[str, str], principal: Principal | None,
                     thread: ThreadIdentity | None, need: str) -> bool:
    """DESIGN.md's thread access rule, restated independently of identity.py."""
    if thread is None or thread.tenant is None:
        return True  # never bound by a principal: open like a stock LangGraph thread
    if principal is None or principal.tenant != thread.tenant:
        return False
    if principal.id == thread.owner:
        return True
    return any(LEVEL_NAMES[roles[r].lower()] >= LEVEL_NAMES[need]
               for r in principal.roles if r in roles)


@PROPS
@given(grants, actors, threads, needs)
def test_access_rule_matches_the_reference(roles: dict[str, str], principal: Principal | None,
                                           thread: ThreadIdentity | None, need: str) -> None:
    rule = AccessRule.from_roles(roles)
    level = Access.parse(need)
    if reference_allows(roles, principal, thread, need):
        rule.check(principal, thread, level)
        return
    with pytest.raises(ThreadAccessDenied) as info:
        rule.check(principal, thread, level)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, StewardError)
    assert thread is not None and info.value.thread_id == thread.thread_id
    assert repr(thread.thread_id) in str(info.value)


@PROPS
@given(grants, actors, threads)
def test_access_is_monotonic_in_the_level_needed(roles: dict[str, str],
                                                 principal: Principal | None,
                                                 thread: ThreadIdentity | None) -> None:
    """Whatever admin access allows, write allows; whatever write allows, read allows."""
    rule = AccessRule.from_roles(roles)
    allowed = []
    for need in (Access.READ, Access.WRITE, Access.ADMIN):
        try:
            rule.check(principal, thread, need)
            allowed.append(True)
        except ThreadAccessDenied:
            allowed.append(False)
    assert allowed == sorted(allowed, reverse=True)


@FEW
@given(st.dictionaries(st.sampled_from(ROLE_NAMES),
                       st.text(max_size=8).filter(lambda s: s.lower() not in LEVEL_NAMES),
                       min_size=1, max_size=3))
def test_unknown_access_levels_raise_config_error(roles: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="'read', 'write' or 'admin'"):
        AccessRule.from_roles(roles)


# -- the payload cipher ------------------------------------------------------------------------

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


# -- the codec ---------------------------------------------------------------------------------

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


# -- memory spaces, filters and the audit chain's payload hashes --------------------------------

LABEL = st.text(alphabet=string.ascii_letters + string.digits + "-_@:", min_size=1, max_size=12)


@PROPS
@given(st.lists(LABEL, min_size=0, max_size=5))
def test_a_namespace_is_a_space_exactly_when_it_is_tenant_then_scope(labels: list[str]) -> None:
    from steward.memory.space import SCOPES, space_of

    ns = tuple(labels)
    well_formed = (len(ns) >= 2 and ns[1].partition(":")[0] in SCOPES
                   and ns[1].partition(":")[1] == ":" and bool(ns[1].partition(":")[2]))
    try:
        space = space_of(ns)
    except ConfigError:
        assert not well_formed
    else:
        assert well_formed and (space.tenant, space.scope) == ns[:2]
        assert f"{space.kind}:{space.name}" == ns[1]


SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))


@PROPS
@given(st.dictionaries(st.sampled_from("abc"), SCALAR, max_size=3),
       st.dictionaries(st.sampled_from("abc"), SCALAR, max_size=2))
def test_an_equality_filter_matches_exactly_the_equal_values(value: dict[str, Any],
                                                             want: dict[str, Any]) -> None:
    from steward.memory.store import _matches

    assert _matches(value, want) == all(value.get(k) == v for k, v in want.items())
    assert _matches(value, {k: {"$eq": v} for k, v in want.items()}) == _matches(value, want)
    assert _matches(value, {k: {"$ne": v} for k, v in want.items()}) == all(
        value.get(k) != v for k, v in want.items())


JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)


@PROPS
@given(st.lists(st.dictionaries(st.text(max_size=4), JSONISH, max_size=3), min_size=1,
                max_size=5), st.data())
def test_a_chain_with_payload_hashes_catches_any_payload_edit(payloads: list[dict[str, Any]],
                                                              data: st.DataObject) -> None:
    from steward import AuditTampered
    from steward.audit.chain import (
        GENESIS,
        Event,
        event_hash,
        payload_digest,
        tombstone,
        verify_chain,
    )

    events, prev = [], GENESIS
    for seq, payload in enumerate(payloads, 1):
        body = {"thread_id": "T", "seq": seq, "kind": "k", "at": 1.5, "tenant": "acme",
                "principal_id": "alice", "run_id": None, "node": None, "step": None,
                "checkpoint_ns": None, "checkpoint_id": None, "duration": None,
                "payload": payload}
        ph = payload_digest(payload)
        digest = event_hash(prev, body, ph)
        events.append(Event(**body, prev_hash=prev, hash=digest, payload_hash=ph))
        prev = digest
    assert verify_chain("T", events, (len(events), prev)) == len(events)
    at = data.draw(st.integers(0, len(events) - 1))
    erased = dataclasses.replace(events[at], payload=tombstone("era_0123"))
    assert verify_chain("T", [*events[:at], erased, *events[at + 1:]]) == len(events)
    edited = data.draw(st.dictionaries(st.text(max_size=4), JSONISH, max_size=3))
    assume(payload_digest(edited) != events[at].payload_hash and
           tombstone_free(edited))
    with pytest.raises(AuditTampered):
        verify_chain("T", [*events[:at], dataclasses.replace(events[at], payload=edited),
                           *events[at + 1:]])


def tombstone_free(payload: dict[str, Any]) -> bool:
    from steward.audit.chain import tombstone_of

    return tombstone_of(payload) is None
