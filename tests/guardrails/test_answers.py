"""The resume formats an approval accepts, as pure functions: Steward's vote, LangChain's
``decisions`` and Agent Inbox's legacy list (property tests over well- and ill-formed values)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward import ApprovalInvalid
from steward.guardrails.answers import RESPONSE, Answer, Standing, parse_answer, typed_like

ARGS = {"order_id": "98765", "amount": 120, "rate": 0.5, "express": False,
        "lines": [1, 2], "note": "hi"}


@pytest.mark.parametrize(("value", "expected"), [
    ({"decision": "approve"}, Answer("approve")),
    ({"decision": "reject", "comment": "no"}, Answer("reject", "no")),
    ({"decision": "approve", "standing": {"uses": 3, "expires_in": 60}},
     Answer("approve", standing=Standing(3, 60.0))),
    ({"decisions": [{"type": "approve"}]}, Answer("approve")),
    ({"decisions": [{"type": "approve", "standing": {"uses": 2, "expires_in": 5}}]},
     Answer("approve", standing=Standing(2, 5.0))),
    ({"decisions": [{"type": "reject", "message": "too much"}]}, Answer("reject", "too much")),
    ({"decisions": [{"type": "reject"}]}, Answer("reject")),
    ({"decisions": [{"type": "edit", "edited_action": {"name": "refund",
                                                       "args": {"amount": 90}}}]},
     Answer("approve", edited={"amount": 90})),
    ([{"type": "accept", "args": None}], Answer("approve")),
    ([{"type": "ignore", "args": None}], Answer("reject", "ignored in Agent Inbox")),
    ([{"type": "response", "args": "call me"}], Answer("reject", "call me")),
    ([{"type": "edit", "args": {"action": "refund", "args": {
        "amount": "90", "rate": "0.25", "express": "true", "lines": "[3]", "note": "7",
        "order_id": "1"}}}],
     Answer("approve", edited={"amount": 90, "rate": 0.25, "express": True, "lines": [3],
                               "note": "7", "order_id": "1"})),
])
def test_each_format_gives_its_answer(value: Any, expected: Answer) -> None:
    assert parse_answer(value, "refund", ARGS) == expected


@pytest.mark.parametrize(("value", "says"), [
    ("approve", "str"),
    ({"decision": "yes"}, "'approve' or 'reject'"),
    ({"decision": "approve", "extra": 1}, "extra"),
    ({"decisions": []}, "decisions"),
    ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "one decision"),
    ({"decisions": [{"type": "edit", "edited_action": {"name": "delete_all", "args": {}}}]},
     "not the action"),
    ({"decisions": [{"type": "maybe"}]}, "decisions.0"),
    ({"decision": "approve", "standing": {"uses": 0, "expires_in": 5}}, "uses"),
    ({"decision": "approve", "standing": {"uses": 2}}, "expires_in"),
    ([{"type": "response", "args": None}], "its text"),
    ([{"type": "edit", "args": "90"}], "'edit'"),
    ([{"type": "edit", "args": {"action": "refund", "args": {"amount": "ninety"}}}],
     "must be a int"),
    ([{"type": "edit", "args": {"action": "refund", "args": {"express": "maybe"}}}],
     "must be a bool"),
    ([], "list"),
])
def test_malformed_answers_are_refused_saying_what_is_wrong(value: Any, says: str) -> None:
    with pytest.raises(ApprovalInvalid, match="still waits") as caught:
        parse_answer(value, "refund", ARGS)
    assert says in str(caught.value) and caught.value.malformed


def test_typed_like_turns_inbox_text_back_into_the_original_types() -> None:
    assert typed_like(Decimal("1.5"), "2.25", "x") == Decimal("2.25")
    assert typed_like({"a": 1}, '{"b": 2}', "x") == {"b": 2}
    assert typed_like(None, "[1]", "x") == [1] and typed_like(None, "plain", "x") == "plain"
    assert typed_like(5, 6, "x") == 6  # not text: as sent


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10),
                 st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.sampled_from(["decision", "decisions", "comment", "type",
                                                  "args", "standing"]),
                                 st.one_of(st.text(max_size=8), st.integers(), st.none(),
                                           st.lists(st.dictionaries(
                                               st.sampled_from(["type", "message"]),
                                               st.sampled_from(["approve", "reject", "edit",
                                                                "x"]), max_size=2),
                                               max_size=2)),
                                 max_size=3)))
def test_any_value_is_an_answer_or_a_malformed_refusal(value: Any) -> None:
    """No value crashes the parser: it is one answer, or ApprovalInvalid (malformed), and the
    schema LangGraph checks before saving agrees on which."""
    try:
        RESPONSE.validate_python(value)
        schema_ok = True
    except Exception:
        schema_ok = False
    try:
        answer = parse_answer(value, "refund", ARGS)
    except ApprovalInvalid as exc:
        assert exc.malformed
    else:
        assert schema_ok and answer.decision in ("approve", "reject")
