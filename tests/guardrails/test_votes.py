"""The vote rules as a pure function: property tests over principals, roles and payloads."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward import ApprovalInvalid, Principal
from steward.guardrails.records import PENDING, Request, Vote
from steward.guardrails.request import check_vote, hash_args

ROLES = ("support", "manager", "finance", "auditor")
NOW = 1_000_000.0


def _request(required: tuple[str, ...], quorum: int = 1, expires_at: float | None = None,
             requester: str = "alice") -> Request:
    return Request("apr_1", "T", "n:task", 0, "acme", "issue_refund", "sha256:x",
                   {"type": "approval_request"}, required, requester, quorum, PENDING, None,
                   NOW - 10, expires_at, None, None)


principals = st.builds(
    Principal,
    id=st.sampled_from(["alice", "bob", "carol", "dave"]),
    tenant=st.sampled_from(["acme", "globex"]),
    roles=st.frozensets(st.sampled_from(ROLES)),
)
required_roles = st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True).map(
    lambda r: tuple(sorted(r)))
earlier = st.lists(st.sampled_from(["bob", "carol", "dave", "erin"]), unique=True, max_size=3)
payloads = st.one_of(
    st.fixed_dictionaries({"decision": st.sampled_from(["approve", "reject"])},
                          optional={"comment": st.text(max_size=50)}),
    st.fixed_dictionaries({"decisions": st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["approve", "reject", "maybe"])}), max_size=2)}),
    st.lists(st.fixed_dictionaries({"type": st.sampled_from(["accept", "ignore", "nope"])}),
             max_size=2),
    st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


def _oracle(request: Request, voters: list[str], principal: Principal, payload: Any,
            now: float) -> bool:
    """The rules of issue #4, written plainly."""
    steward_vote = (isinstance(payload, dict) and set(payload) <= {"decision", "comment"}
                    and payload.get("decision") in ("approve", "reject")
                    and isinstance(payload.get("comment", ""), str))
    decisions = (isinstance(payload, dict) and set(payload) == {"decisions"}
                 and len(payload["decisions"]) == 1
                 and payload["decisions"][0]["type"] in ("approve", "reject"))
    inbox = (isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], dict)
             and payload[0].get("type") in ("accept", "ignore"))
    well_formed = steward_vote or decisions or inbox
    return (well_formed and principal.tenant == request.tenant
            and principal.id != request.requested_by
            and bool(set(request.required_roles) & principal.roles)
            and principal.id not in voters
            and (request.expires_at is None or now < request.expires_at))


@settings(max_examples=400, deadline=None)
@given(principals, required_roles, earlier, payloads,
       st.sampled_from([None, NOW - 1, NOW + 60]))
def test_a_vote_is_accepted_exactly_when_every_rule_holds(
        principal: Principal, required: tuple[str, ...], voters: list[str], payload: Any,
        expires_at: float | None) -> None:
    request = _request(required, expires_at=expires_at)
    votes = [Vote("apr_1", v, i, "manager", "approve", None, "sha256:x", NOW - 5)
             for i, v in enumerate(voters)]
    expected = _oracle(request, voters, principal, payload, NOW)
    try:
        vote = check_vote(request, votes, principal, payload, len(votes), NOW)
    except ApprovalInvalid as exc:
        assert not expected, f"refused a valid vote: {exc}"
        assert "still waits" in str(exc) or "expired" in str(exc)
    else:
        assert expected, "accepted a vote that breaks a rule"
        assert vote.voter == principal.id and vote.role in required
        decided = (payload["decision"] if "decision" in payload else
                   payload["decisions"][0]["type"] if "decisions" in payload else
                   {"accept": "approve", "ignore": "reject"}[payload[0]["type"]])
        assert vote.args_hash == request.args_hash and vote.decision == decided


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=10),
                                                         st.floats(allow_nan=False)),
                       max_size=5))
def test_args_hash_ignores_key_order_and_sees_every_value(args: dict[str, Any]) -> None:
    reordered = dict(reversed(list(args.items())))
    assert hash_args(args) == hash_args(reordered)
    for key in args:
        changed = {**args, key: [args[key]]}
        assert hash_args(changed) != hash_args(args)


def test_a_requester_never_votes_even_with_the_role() -> None:
    request = _request(("manager",), requester="bob")
    with pytest.raises(ApprovalInvalid, match="four eyes"):
        check_vote(request, [], Principal("bob", "acme", frozenset({"manager"})),
                   {"decision": "approve"}, 0, NOW)
