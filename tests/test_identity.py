"""Identity (steward.identity): principals, their text forms, agents acting for them, and the
thread access rule, checked against a reference restatement of DESIGN.md's rule. No database;
each property runs a bounded number of cases."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from _support import ALICE
from hypothesis import given, settings
from hypothesis import strategies as st

from steward import ConfigError, Principal, StewardError, ThreadAccessDenied
from steward.identity import (
    AGENT_KEY,
    Access,
    AccessRule,
    ThreadIdentity,
    agent_from_config,
    parse_principal,
    parse_thread_roles,
)

PROPS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=50, deadline=None)

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


# -- principals and thread roles written as text ---------------------------------------------


def test_principals_and_thread_roles_written_as_text() -> None:
    """The forms the CLI (``--as``, ``--thread-roles``), the environment and the server's dev
    tokens use; a refusal names where the text came from."""
    assert parse_principal(" acme/bob@acme.test:manager,auditor ") == Principal(
        id="bob@acme.test", tenant="acme", roles=frozenset({"manager", "auditor"}))
    assert parse_principal("acme/alice") == Principal(id="alice", tenant="acme")
    service = parse_principal('{"id": "svc-sync", "tenant": "acme", "kind": "service"}')
    assert (service.kind, service.roles) == ("service", frozenset())
    with pytest.raises(ConfigError, match=r"^--as 'bob' names no tenant: write TENANT/ID"):
        parse_principal("bob", source="--as")
    with pytest.raises(ConfigError, match=r"^principal '\{bad' is not valid JSON"):
        parse_principal("{bad")
    with pytest.raises(ConfigError, match="invalid principal"):
        parse_principal('{"id": "x"}')
    assert parse_thread_roles(" manager=write, auditor=read,,ops=admin ") == {
        "manager": "write", "auditor": "read", "ops": "admin"}
    assert parse_thread_roles("") == {}
    for bad in ("ops=root", "ops", "=read"):
        with pytest.raises(ConfigError, match=rf"^\$STEWARD_THREAD_ROLES '{bad}': write ROLE="):
            parse_thread_roles(bad, source="$STEWARD_THREAD_ROLES")


# -- agents acting for a principal -------------------------------------------------------------


def test_an_agent_acts_only_within_its_principals_tenant() -> None:
    agent = {"id": "agent-x", "tenant": "globex", "roles": ["writer"], "kind": "service"}
    with pytest.raises(ConfigError, match="on behalf of a principal of its own tenant"):
        agent_from_config({"configurable": {AGENT_KEY: agent}}, ALICE)
    with pytest.raises(ConfigError, match="on behalf of a principal of its own tenant"):
        agent_from_config({"configurable": {AGENT_KEY: agent}}, None)
    same = agent_from_config({"configurable": {AGENT_KEY: {**agent, "tenant": "acme"}}}, ALICE)
    assert same is not None and same.kind == "service"


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
