"""The checks trace each row of a system of record to an effect call in its thread's audit
trail: a row no call of the thread wrote (behind Steward's back) breaks "forbidden"."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from steward.evaluation.cases import Case
from steward.evaluation.checks import Checker
from steward.evaluation.result import Broken
from steward.examples.access import grant_access
from steward.examples.refund import add_order, pay_refund

KEY = "stw-" + "0" * 31 + "1"  # a key as Steward makes them ("stw-" and 32 hex digits)
OTHER = "stw-" + "0" * 31 + "2"


def _broken(case: Case, calls: list[tuple[str, str]]) -> list[Broken]:
    """What the checks find on ``case`` when its trail holds ``calls`` (effect, key)."""
    events = [SimpleNamespace(payload={"effect": effect, "idempotency_key": key})
              for effect, key in calls]
    rt: Any = SimpleNamespace(
        audit=SimpleNamespace(events=lambda thread_id, who, kinds: events),
        approvals=SimpleNamespace(history=lambda thread_id, who: []))
    checker = Checker(rt)
    checker.thread(case, "waiting", [])
    assert checker.checked["forbidden"] >= 1  # the row was looked at
    return checker.broken


REFUND = Case("refund-001", "refund", "refund", "small", "alice", "700001", (), "refunded",
              {"amount": "40.00", "customer": "c@example.com"})
ACCESS = Case("access-001", "access", "access", "read", "alice", "dana", (), "done")


@pytest.mark.parametrize(("calls", "held"), [
    ([("demo.pay_refund", KEY)], True),
    ([], False),
    ([("demo.pay_refund", OTHER)], False),  # another call's key
    ([("demo.send_receipt", KEY)], False),  # the key of another effect
])
def test_a_refund_must_be_paid_by_an_effect_call_of_its_thread(
        calls: list[tuple[str, str]], held: bool) -> None:
    add_order("700001", "c@example.com", "900.00")
    txn = pay_refund.__wrapped__("700001", "40.00", idempotency_key=KEY)
    found = [(b.guarantee, b.thread_id, b.detail) for b in _broken(REFUND, calls)]
    assert found == ([] if held else [
        ("forbidden", "refund-001", f"refund {txn} of 40.00 on order 700001 was made by no "
                                    "effect call in the thread's audit trail")])


@pytest.mark.parametrize(("calls", "held"), [
    ([("tool:grant_access", KEY)], True),
    ([], False),
    ([("tool:grant_access", OTHER)], False),
    ([("tool:notify_user", KEY)], False),
])
def test_a_grant_must_be_named_after_an_effect_call_of_its_thread(
        calls: list[tuple[str, str]], held: bool) -> None:
    grant = grant_access.func(user_id="dana", system="billing", role="read", days=14,
                              idempotency_key=KEY, principal={"id": "alice"})
    assert grant["grant_id"] == "G-" + KEY[-10:].upper()
    found = [(b.guarantee, b.thread_id, b.detail) for b in _broken(ACCESS, calls)]
    assert found == ([] if held else [
        ("forbidden", "access-001", f"grant {grant['grant_id']} was written by no effect call "
                                    "in the thread's audit trail")])
