"""Tests of the Cedar guardrails as pure functions: ``Policy.evaluate``, ``combine`` and
``Guardrails.decide``. No database, no graph: a request is plain data and so is a decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from itertools import combinations
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from steward.errors import ConfigError
from steward.guardrails.decision import Decision, combine
from steward.guardrails.guard import Guardrails
from steward.guardrails.policy import (
    ActionHistory,
    Policy,
    PolicyRequest,
    ThreadFacts,
    cedar_value,
)
from steward.identity import Principal

PROPS = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=50, deadline=None)
ORACLE = settings(max_examples=300, deadline=None)

ALICE = Principal("alice", "acme", frozenset({"support"}))
MANAGER = Principal("mia", "acme", frozenset({"support", "manager"}))
THREAD = ThreadFacts("T1", "acme", "alice", {"channel": "email", "priority": 2})
PERMIT_ALL = "permit (principal, action, resource);"


def request(args: Mapping[str, Any] | None = None, *, principal: Principal = ALICE,
            action: str = "issue_refund", thread: ThreadFacts = THREAD,
            resource: tuple[str, str] | None = None,
            history: Mapping[str, ActionHistory] | None = None) -> PolicyRequest:
    return PolicyRequest(principal, action, dict(args or {}), thread, resource, dict(history or {}))


def rails(*policies: Policy) -> Guardrails:
    """Guardrails for pure decisions: ``decide`` never touches the records."""
    return Guardrails(policies=policies, records=None)  # type: ignore[arg-type]


def decide(text: str, args: Mapping[str, Any] | None = None, **kw: Any) -> Decision:
    return Policy.from_cedar(text).evaluate(request(args, **kw))


def when(condition: str) -> str:
    """A policy set that allows exactly when ``condition`` holds (Cedar skips a permit whose
    condition errors, so an error reads as "does not hold")."""
    return f"permit (principal, action, resource) when {{ {condition} }};"


# -- allow, deny, and the ids and reasons they report ----------------------------------------

def test_a_permit_allows_and_reports_its_id_and_reason() -> None:
    decision = decide("""
        @id("same-tenant")
        @reason("members of the thread's tenant may refund")
        permit (principal, action == Action::"issue_refund", resource)
        when { principal.tenant == resource.tenant };
    """, {"amount": "12.00"})
    assert decision.allowed and not decision.denied and not decision.needs_approval
    assert decision.effect == "allow"
    assert decision.policy_ids == ("same-tenant",)
    assert decision.reasons == ("members of the thread's tenant may refund",)
    assert decision.enforced


def test_a_policy_without_id_reports_cedars_positional_id() -> None:
    text = """
        @id("other") permit (principal, action == Action::"lookup", resource);
        permit (principal, action == Action::"issue_refund", resource);
    """
    policy = Policy.from_cedar(text)
    assert policy.policy_ids == ["other", "policy1"]
    decision = policy.evaluate(request())
    assert decision.allowed
    assert decision.policy_ids == ("policy1",)
    assert decision.reasons == ("policy 'policy1' (permit) applies",)
    assert "2 policies" in repr(policy) and "shadow" not in repr(policy)


def test_all_matching_permits_are_reported() -> None:
    decision = decide("""
        @id("a") permit (principal, action, resource);
        @id("b") @reason("b says yes") permit (principal, action == Action::"issue_refund",
                                               resource);
        @id("c") permit (principal, action == Action::"other", resource);
    """)
    assert decision.allowed
    assert sorted(decision.policy_ids) == ["a", "b"]
    assert "b says yes" in decision.reasons


def test_no_matching_permit_denies_by_default() -> None:
    decision = decide('permit (principal, action == Action::"lookup", resource);')
    assert decision.denied
    assert decision.policy_ids == ()
    assert decision.reasons == ("no policy permits 'issue_refund' for 'alice'",)


def test_an_empty_policy_set_denies() -> None:
    decision = decide("")
    assert decision.denied
    assert "no policy permits" in decision.reasons[0]


def test_a_plain_forbid_beats_a_permit() -> None:
    text = f"""
        {PERMIT_ALL}
        @id("no-huge-refunds")
        @reason("refunds over 1000.00 are never allowed")
        forbid (principal, action == Action::"issue_refund", resource)
        when {{ context.args.amount.greaterThan(decimal("1000.00")) }};
    """
    decision = decide(text, {"amount": "1500.00"})
    assert decision.denied
    assert decision.policy_ids == ("no-huge-refunds",)
    assert decision.reasons == ("refunds over 1000.00 are never allowed",)
    assert decide(text, {"amount": "999.99"}).allowed


def test_a_forbid_without_reason_gets_a_generated_one() -> None:
    decision = decide(f'{PERMIT_ALL}\nforbid (principal, action, resource);')
    assert decision.denied
    assert decision.policy_ids == ("policy1",)
    assert decision.reasons == ("policy 'policy1' (forbid) applies",)


# -- approval forbids --------------------------------------------------------------------------

APPROVAL = """
@id("refunds")
permit (principal, action == Action::"issue_refund", resource)
when { principal.tenant == resource.tenant };

@id("big-refund")
@approval("ROLES")
QUORUM
@reason("refunds over 100.00 need a manager")
forbid (principal, action == Action::"issue_refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };
"""


def approval_text(roles: str = "manager", quorum: str = "") -> str:
    """APPROVAL with its @approval roles and an optional ``@quorum(...)`` line."""
    return APPROVAL.replace("ROLES", roles).replace("QUORUM", quorum)


def test_an_approval_forbid_asks_for_the_role() -> None:
    decision = decide(approval_text(), {"amount": "150.00"})
    assert decision.needs_approval and not decision.allowed and not decision.denied
    assert decision.effect == "approval"
    assert decision.roles == ("manager",)
    assert decision.quorum == 1
    assert decision.reasons == ("refunds over 100.00 need a manager",)
    assert "big-refund" in decision.policy_ids
    assert "refunds" in decision.policy_ids  # the permit that allows it once approved
    assert decision.to_dict()["roles"] == ["manager"]
    assert decision.to_dict()["quorum"] == 1


def test_an_approval_forbid_that_does_not_match_allows() -> None:
    decision = decide(approval_text(), {"amount": "100.00"})
    assert decision.allowed
    assert decision.policy_ids == ("refunds",)


def test_an_approval_may_name_several_roles() -> None:
    decision = decide(approval_text("manager, finance"), {"amount": "150.00"})
    assert decision.needs_approval
    assert decision.roles == ("finance", "manager")


def test_quorum_sets_how_many_approvals() -> None:
    decision = decide(approval_text(quorum='@quorum("2")'), {"amount": "150.00"})
    assert decision.needs_approval
    assert decision.quorum == 2


def test_several_approval_forbids_union_roles_and_take_the_largest_quorum() -> None:
    text = approval_text(quorum='@quorum("2")') + """
        @id("vip") @approval("finance, auditor") @quorum("3") @reason("VIP customer")
        forbid (principal, action, resource) when { context.args.vip };
    """
    decision = decide(text, {"amount": "150.00", "vip": True})
    assert decision.needs_approval
    assert decision.roles == ("auditor", "finance", "manager")
    assert decision.quorum == 3
    assert set(decision.reasons) == {"refunds over 100.00 need a manager", "VIP customer"}
    assert {"big-refund", "vip", "refunds"} <= set(decision.policy_ids)
    only_vip = decide(text, {"amount": "50.00", "vip": True})
    assert only_vip.roles == ("auditor", "finance") and only_vip.quorum == 3


def test_a_plain_forbid_wins_over_an_approval_forbid() -> None:
    text = approval_text() + """
        @id("blocked") @reason("this customer is blocked")
        forbid (principal, action, resource) when { context.args.blocked };
    """
    decision = decide(text, {"amount": "150.00", "blocked": True})
    assert decision.denied
    assert decision.policy_ids == ("blocked",)
    assert decision.reasons == ("this customer is blocked",)
    assert decide(text, {"amount": "150.00", "blocked": False}).needs_approval


def test_an_approval_forbid_without_a_permit_denies() -> None:
    other_tenant = ThreadFacts("T9", "globex", "gary")
    decision = decide(approval_text(), {"amount": "150.00"}, thread=other_tenant)
    assert decision.denied
    assert decision.reasons == ("no policy permits 'issue_refund' for 'alice'",)
    assert decision.policy_ids == ()


# -- evaluation errors: forbids fail closed, permits are skipped -------------------------------

def test_a_forbid_that_cannot_be_evaluated_denies() -> None:
    decision = decide(f"""
        {PERMIT_ALL}
        @id("needs-flag") forbid (principal, action, resource) when {{ context.args.missing }};
    """, {"amount": "10.00"})
    assert decision.denied
    assert decision.policy_ids == ("needs-flag",)
    assert len(decision.reasons) == 1
    assert "'needs-flag' could not be evaluated" in decision.reasons[0]
    assert "missing" in decision.reasons[0]  # Cedar's error names the attribute


def test_an_approval_forbid_that_cannot_be_evaluated_denies() -> None:
    # An int is a Long: decimal's greaterThan on it is a type error.
    decision = decide(approval_text(), {"amount": 150})
    assert decision.denied
    assert decision.policy_ids == ("big-refund",)
    assert "could not be evaluated" in decision.reasons[0]


def test_a_forbid_error_is_found_among_many_policies() -> None:
    # "policy1" must not be taken for "policy11" (and the other way round).
    permits = "\n".join(f'permit (principal, action == Action::"a{i}", resource);'
                        for i in range(11))
    text = permits + "\nforbid (principal, action, resource) when { context.args.missing };"
    decision = decide(text, action="a1")
    assert decision.denied
    assert decision.policy_ids == ("policy11",)


def test_a_permit_that_cannot_be_evaluated_is_skipped() -> None:
    broken = '@id("broken") permit (principal, action, resource) when { context.args.missing };'
    decision = decide(f'{broken}\n@id("all") {PERMIT_ALL}', {"amount": "1.00"})
    assert decision.allowed
    assert decision.policy_ids == ("all",)
    alone = decide(broken, {"amount": "1.00"})
    assert alone.denied
    assert "no policy permits" in alone.reasons[0]
    assert alone.policy_ids == ()


# -- principals, resources, the thread ---------------------------------------------------------

@pytest.mark.parametrize("condition", ['principal in Role::"manager"',
                                       'principal.roles.contains("manager")'])
def test_roles_are_attributes_and_parents(condition: str) -> None:
    assert decide(when(condition), principal=MANAGER).allowed
    assert decide(when(condition), principal=ALICE).denied


def test_principal_attributes() -> None:
    condition = 'principal.id == "alice" && principal.tenant == "acme"'
    assert decide(when(condition)).allowed
    assert decide(when(condition), principal=Principal("alice", "globex")).denied


def test_service_principals_are_service_entities() -> None:
    bot = Principal("billing-bot", "acme", frozenset({"automation"}), kind="service")
    text = """
        permit (principal == Service::"billing-bot", action, resource)
        when { principal in Role::"automation" && principal.tenant == resource.tenant };
    """
    assert decide(text, principal=bot).allowed
    assert decide(when("principal is Service"), principal=bot).allowed
    assert decide(when("principal is User"), principal=bot).denied
    user = Principal("billing-bot", "acme", frozenset({"automation"}))
    assert decide(text, principal=user).denied
    assert decide(when("principal is User"), principal=user).allowed


def test_the_default_resource_is_the_thread() -> None:
    text = """
        permit (principal, action, resource == Thread::"T1")
        when { resource.tenant == "acme" && resource.owner == "alice" };
    """
    assert decide(text).allowed
    assert decide(text, thread=ThreadFacts("T2", "acme", "alice")).denied


def test_a_named_resource_belongs_to_the_thread() -> None:
    text = """
        permit (principal, action, resource in Thread::"T1")
        when { resource is Order && resource == Order::"98765"
               && resource.tenant == principal.tenant };
    """
    assert decide(text, resource=("Order", "98765")).allowed
    assert decide(text, resource=("Order", "11111")).denied
    assert decide(text, resource=("Order", "98765"),
                  thread=ThreadFacts("T2", "acme", "alice")).denied
    assert decide(text, resource=("Order", "98765"),
                  thread=ThreadFacts("T1", "globex", "gary")).denied


def test_a_resource_type_may_have_a_namespace() -> None:
    text = 'permit (principal, action, resource == Shop::Order::"98765");'
    assert decide(text, resource=("Shop::Order", "98765")).allowed


def test_thread_facts_and_metadata_are_in_the_context() -> None:
    condition = """context.thread.id == "T1" && context.thread.tenant == "acme"
        && context.thread.owner == "alice" && context.thread.metadata.channel == "email"
        && context.thread.metadata.priority > 1"""
    assert decide(when(condition)).allowed
    chat = ThreadFacts("T1", "acme", "alice", {"channel": "chat", "priority": 2})
    assert decide(when(condition), thread=chat).denied


def test_missing_thread_facts_are_left_out() -> None:
    bare = ThreadFacts("T1")
    condition = "!(context.thread has tenant) && !(context.thread has owner)"
    assert decide(when(condition), thread=bare).allowed
    assert decide(when("resource has tenant"), thread=bare).denied


# -- typed arguments ---------------------------------------------------------------------------

def test_ints_are_longs() -> None:
    assert decide(when("context.args.n > 3"), {"n": 4}).allowed
    assert decide(when("context.args.n > 3"), {"n": 3}).denied
    assert decide(when("context.args.n == -7"), {"n": -7}).allowed


@pytest.mark.parametrize("big", ["120.00", Decimal("120.00"), 120.5, Decimal("100.0001"),
                                 "100.01", Decimal("1E+3")])
def test_decimal_like_values_are_decimals(big: Any) -> None:
    text = when('context.args.amount.greaterThan(decimal("100.00"))')
    assert decide(text, {"amount": big}).allowed


@pytest.mark.parametrize("small", ["99.99", Decimal("99.99"), 99.5, "100.0", Decimal("100")])
def test_decimal_like_values_compare_as_decimals(small: Any) -> None:
    text = when('context.args.amount.lessThanOrEqual(decimal("100.00"))')
    assert decide(text, {"amount": small}).allowed


def test_strings_that_are_not_decimals_stay_strings() -> None:
    assert decide(when('context.args.code == "120"'), {"code": "120"}).allowed
    assert decide(when('context.args.why == "damaged"'), {"why": "damaged"}).allowed
    # Five fractional digits do not fit a Cedar decimal: the value stays a string.
    assert decide(when('context.args.x == "1.23456"'), {"x": "1.23456"}).allowed


def test_bools_are_bools() -> None:
    assert decide(when("context.args.urgent"), {"urgent": True}).allowed
    assert decide(when("context.args.urgent"), {"urgent": False}).denied
    assert decide(when("context.args.urgent == true"), {"urgent": True}).allowed


def test_dicts_are_records() -> None:
    condition = 'context.args.customer.tier == "gold" && context.args.customer.years > 2'
    assert decide(when(condition), {"customer": {"tier": "gold", "years": 3}}).allowed
    assert decide(when(condition), {"customer": {"tier": "gold", "years": 1}}).denied
    nested = 'context.args.order.total.greaterThan(decimal("10.00"))'
    assert decide(when(nested), {"order": {"total": Decimal("10.50")}}).allowed


def test_lists_are_sets() -> None:
    condition = 'context.args.tags.contains("vip") && context.args.ids.contains(3)'
    assert decide(when(condition), {"tags": ["new", "vip"], "ids": (1, 3)}).allowed
    assert decide(when(condition), {"tags": ["new"], "ids": [3]}).denied


def test_none_is_left_out() -> None:
    assert decide(when("!(context.args has note)"), {"note": None}).allowed
    assert decide(when("!(context.args has note)"), {"note": "hi"}).denied
    assert decide(when("context.args.tags == []"), {"tags": [None]}).allowed
    assert decide(when("!(context.args.c has d)"), {"c": {"d": None}}).allowed


def test_cedar_value_shapes() -> None:
    assert cedar_value(None) is None
    assert cedar_value(True) is True
    assert cedar_value(7) == 7
    assert cedar_value(2**70) == str(2**70)  # beyond a Long
    assert cedar_value("120.00") == {"__extn": {"fn": "decimal", "arg": "120.00"}}
    assert cedar_value(Decimal("5")) == {"__extn": {"fn": "decimal", "arg": "5.0"}}
    assert cedar_value(1.25) == {"__extn": {"fn": "decimal", "arg": "1.25"}}
    assert cedar_value(Decimal("1.234567")) == "1.234567"
    assert cedar_value(Decimal("NaN")) == "NaN"
    assert cedar_value({"a": None, "b": [1, None, "x"], 3: "k"}) == {"b": [1, "x"], "3": "k"}


# -- history and cumulative values -------------------------------------------------------------

VERIFY_FIRST = f"""
{PERMIT_ALL}
@id("verify-first") @reason("verify the order first")
forbid (principal, action == Action::"issue_refund", resource)
unless {{ context.history has verify_order && context.history.verify_order.succeeded > 0 }};
"""


@pytest.mark.parametrize(("history", "allowed"), [
    ({}, False),
    ({"verify_order": ActionHistory(count=1, succeeded=0)}, False),
    ({"lookup": ActionHistory(count=3, succeeded=3)}, False),
    ({"verify_order": ActionHistory(count=2, succeeded=1)}, True),
])
def test_history_of_other_actions(history: dict[str, ActionHistory], allowed: bool) -> None:
    decision = decide(VERIFY_FIRST, {"amount": "10.00"}, history=history)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.policy_ids == ("verify-first",)
        assert decision.reasons == ("verify the order first",)


def test_history_count_approved_and_total() -> None:
    condition = """context.history has issue_refund
        && context.history.issue_refund.approved
        && context.history.issue_refund.count == 2
        && context.history.issue_refund.total.amount == decimal("450.00")"""
    past = ActionHistory(count=2, succeeded=2, approved=True,
                         totals={"amount": Decimal("450.00")})
    assert decide(when(condition), {"amount": "1.00"}, history={"issue_refund": past}).allowed
    unapproved = ActionHistory(count=2, succeeded=2, approved=False,
                               totals={"amount": Decimal("450.00")})
    assert decide(when(condition), {"amount": "1.00"},
                  history={"issue_refund": unapproved}).denied


LIMIT = f"""
{PERMIT_ALL}
@id("refund-limit") @reason("refunds on a thread add up to at most 500.00")
forbid (principal, action == Action::"issue_refund", resource)
when {{ context.cumulative.amount.greaterThan(decimal("500.00")) }};
"""


@pytest.mark.parametrize(("amount", "allowed"), [
    ("60.00", False), ("50.00", True), ("40.00", True), (Decimal("50.01"), False),
    (51, False), (50, True), (49.5, True),
])
def test_cumulative_adds_this_call_to_the_history_total(amount: Any, allowed: bool) -> None:
    history = {"issue_refund": ActionHistory(count=3, succeeded=3,
                                             totals={"amount": Decimal("450.00")})}
    decision = decide(LIMIT, {"amount": amount}, history=history)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.policy_ids == ("refund-limit",)


def test_cumulative_is_a_decimal_sum() -> None:
    history = {"issue_refund": ActionHistory(count=1, totals={"amount": Decimal("450.00")})}
    text = when('context.cumulative.amount == decimal("510.00")')
    assert decide(text, {"amount": "60.00"}, history=history).allowed
    assert decide(text, {"amount": 60}, history=history).allowed  # a Long adds as a decimal


def test_cumulative_without_history_is_the_amount() -> None:
    text = when('context.cumulative.amount == decimal("60.00")')
    assert decide(text, {"amount": "60.00"}).allowed
    assert decide(text, {"amount": 60}).allowed
    assert decide(text, {"amount": Decimal("60")}).allowed
    # History of another action does not count towards this one.
    other = {"lookup": ActionHistory(count=1, totals={"amount": Decimal("100.00")})}
    assert decide(text, {"amount": "60.00"}, history=other).allowed
    assert decide(LIMIT, {"amount": "500.00"}).allowed
    assert decide(LIMIT, {"amount": "500.01"}).denied


def test_only_numeric_arguments_are_cumulative() -> None:
    text = when("!(context.cumulative has note) && !(context.cumulative has flag) "
                "&& context.cumulative has amount")
    assert decide(text, {"amount": 1, "note": "x", "flag": True}).allowed


# -- bad policies ------------------------------------------------------------------------------

def cedar_error(text: str) -> str:
    with pytest.raises(ValueError) as info:
        cedarpy.PolicySet.from_str(text)
    return str(info.value)


@pytest.mark.parametrize(("text", "line"), [
    ("permit (principal, action, resource) when { 1 + };", 1),
    (f"{PERMIT_ALL}\n\nforbid (principal, action, resource)\n  when {{ context.args.x > }};\n",
     4),
    (f"{PERMIT_ALL}\nfrobid (principal, action, resource);\n{PERMIT_ALL}", 2),
    ("// a comment\npermit (principal, action, resource)\nwhen { true }", 3),
])
def test_a_syntax_error_is_a_config_error_with_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        Policy.from_cedar(text)
    message = str(info.value)
    assert "is not valid Cedar" in message
    assert cedar_error(text) in message
    assert f"(line {line}: " in message


def test_a_syntax_error_after_a_multiline_string_reports_its_line() -> None:
    text = '@reason("two\nlines")\npermit (principal, action, resource)\nwhen { 1 + };'
    with pytest.raises(ConfigError) as info:
        Policy.from_cedar(text)
    assert "(line 4: " in str(info.value)


def test_approval_on_a_permit_is_rejected() -> None:
    text = f'{PERMIT_ALL}\n\n@id("p")\n@approval("manager")\npermit (principal, action, resource);'
    with pytest.raises(ConfigError, match=r"@approval belongs on a forbid") as info:
        Policy.from_cedar(text)
    assert "'p' (line 3)" in str(info.value)


@pytest.mark.parametrize("roles", ["", " ", " , ", ","])
def test_an_empty_approval_is_rejected(roles: str) -> None:
    with pytest.raises(ConfigError, match="@approval names no role"):
        Policy.from_cedar(f'@approval("{roles}") forbid (principal, action, resource);')


def test_a_bare_approval_is_rejected() -> None:
    with pytest.raises(ConfigError):
        Policy.from_cedar("@approval forbid (principal, action, resource);")


@pytest.mark.parametrize("text", [
    '@quorum("2") forbid (principal, action, resource);',
    '@quorum("2") permit (principal, action, resource);',
])
def test_quorum_without_approval_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="@quorum needs an @approval"):
        Policy.from_cedar(text)


@pytest.mark.parametrize("quorum", ["0", "x", "-1", "1.5", "", "00"])
def test_a_bad_quorum_is_rejected(quorum: str) -> None:
    text = f'@approval("manager") @quorum("{quorum}") forbid (principal, action, resource);'
    with pytest.raises(ConfigError, match="@quorum must be a whole number"):
        Policy.from_cedar(text)


def test_a_bare_quorum_is_rejected() -> None:
    with pytest.raises(ConfigError):
        Policy.from_cedar('@approval("manager") @quorum forbid (principal, action, resource);')


def test_a_superscript_quorum_is_rejected() -> None:
    with pytest.raises(ConfigError):
        Policy.from_cedar('@approval("manager") @quorum("²") forbid (principal, action, '
                          "resource);")


@pytest.mark.parametrize("annotation", ["@id", '@id("")', '@id("  ")'])
def test_a_bare_or_empty_id_is_rejected(annotation: str) -> None:
    # Like a bare @approval, @quorum or @reason: the author meant to name the policy, and
    # decisions would otherwise report a positional id that moves with the policy's place.
    with pytest.raises(ConfigError, match=r'@id needs a name, e\.g\. @id\("refund-cap"\)'):
        Policy.from_cedar(f"{annotation} permit (principal, action, resource);")


def test_without_an_id_decisions_report_the_positional_id() -> None:
    policy = Policy.from_cedar(f'{PERMIT_ALL}\n@id("named") permit (principal, action, '
                               "resource);")
    assert policy.policy_ids == ["policy0", "named"]


@pytest.mark.parametrize("text", [
    "permit (principal == ?principal, action, resource);",
    f"{PERMIT_ALL}\nforbid (principal, action, resource in ?resource);",
])
def test_templates_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="templates"):
        Policy.from_cedar(text)


@pytest.mark.parametrize("text", [b"permit (principal, action, resource);", None, 42])
def test_policy_text_must_be_a_string(text: Any) -> None:
    with pytest.raises(ConfigError, match="must be text"):
        Policy.from_cedar(text)


def test_from_file_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cedar"
    with pytest.raises(ConfigError, match="cannot read the policy file") as info:
        Policy.from_file(missing)
    assert str(missing) in str(info.value)


def test_from_file_reads_a_policy(tmp_path: Path) -> None:
    file = tmp_path / "refunds.cedar"
    file.write_text(approval_text(), encoding="utf-8")
    policy = Policy.from_file(file)
    assert policy.enforce
    assert policy.policy_ids == ["refunds", "big-refund"]
    assert policy.evaluate(request({"amount": "150.00"})).needs_approval
    shadow = Policy.from_file(str(file), enforce=False)
    assert not shadow.enforce and "shadow" in repr(shadow)


def test_from_file_names_the_file_in_syntax_errors(tmp_path: Path) -> None:
    file = tmp_path / "bad.cedar"
    file.write_text(f"{PERMIT_ALL}\npermit (principal, action resource);\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"policy file {file}")) as info:
        Policy.from_file(file)
    assert "(line 2: " in str(info.value)


def test_from_file_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "latin1.cedar"
    file.write_bytes(f"// café\n{PERMIT_ALL}\n".encode("latin-1"))
    with pytest.raises(ConfigError):
        Policy.from_file(file)


# -- identifiers that are not plain ASCII ------------------------------------------------------

def test_a_non_ascii_principal_id_is_allowed() -> None:
    assert decide(PERMIT_ALL, principal=Principal("josé", "acme")).allowed


def test_a_non_ascii_action_name_is_allowed() -> None:
    assert decide('permit (principal, action == Action::"rembourser_é", resource);',
                  action="rembourser_é").allowed


def test_a_non_ascii_thread_id_is_allowed() -> None:
    assert decide(PERMIT_ALL, thread=ThreadFacts("fil-é", "acme", "alice")).allowed


def test_naming_the_thread_itself_as_the_resource_is_like_naming_none() -> None:
    assert decide(PERMIT_ALL, resource=("Thread", "T1")).allowed


# -- shadow mode, combine, Guardrails.decide ---------------------------------------------------

DENY_ALL = '@id("deny-all") forbid (principal, action, resource);'


def test_a_shadow_policy_marks_its_decisions() -> None:
    shadow = Policy.from_cedar(DENY_ALL, enforce=False)
    decision = shadow.evaluate(request())
    assert decision.denied and decision.enforced is False
    assert decision.policy_ids == ("deny-all",)
    assert decision.to_dict()["enforced"] is False
    approval = Policy.from_cedar(approval_text(), enforce=False).evaluate(
        request({"amount": "150.00"}))
    assert approval.needs_approval and not approval.enforced
    assert approval.roles == ("manager",)


def test_guardrails_attach_shadow_decisions_to_the_enforced_one() -> None:
    enforced = Policy.from_cedar(f'@id("all") {PERMIT_ALL}')
    shadow = Policy.from_cedar(DENY_ALL, enforce=False)
    decision = rails(enforced, shadow).decide(request())
    assert decision.allowed and decision.enforced
    assert decision.policy_ids == ("all",)
    assert len(decision.shadow) == 1
    assert decision.shadow[0].denied and not decision.shadow[0].enforced
    assert decision.to_dict()["shadow"][0]["effect"] == "deny"
    alone = rails(enforced).decide(request())
    assert alone == decision and alone.shadow == ()


def test_guardrails_combine_several_enforced_policies() -> None:
    permit = Policy.from_cedar(f'@id("all") {PERMIT_ALL}')
    ask = Policy.from_cedar(approval_text("finance", '@quorum("2")'))
    guardrails = rails(permit, ask)
    decision = guardrails.decide(request({"amount": "150.00"}))
    assert decision.needs_approval and decision.roles == ("finance",) and decision.quorum == 2
    deny = Policy.from_cedar(f"{PERMIT_ALL}\n{DENY_ALL}")
    guardrails = rails(permit, ask, deny)
    assert guardrails.decide(request({"amount": "150.00"})).policy_ids == ("deny-all",)


def test_guardrails_without_enforced_policies_allow() -> None:
    shadow = Policy.from_cedar(DENY_ALL, enforce=False)
    decision = rails(shadow).decide(request())
    assert decision.allowed
    assert decision.reasons == ("no policy is configured",)
    assert [d.effect for d in decision.shadow] == ["deny"]
    nothing = rails().decide(request())
    assert nothing.allowed and nothing.shadow == ()


def test_combine_nothing_allows() -> None:
    decision = combine([])
    assert decision.allowed
    assert decision.reasons == ("no policy is configured",)


def test_combine_deny_wins() -> None:
    decision = combine([
        Decision.allow(policy_ids=["a"], reasons=["ok"]),
        Decision.require_approval(["manager"], ["big"], 2, policy_ids=["b"]),
        Decision.deny(["no"], policy_ids=["c"]),
        Decision.deny(["never"], policy_ids=["d"]),
    ])
    assert decision.denied
    assert decision.reasons == ("no", "never")
    assert decision.policy_ids == ("c", "d")


def test_combine_approval_beats_allow() -> None:
    decision = combine([
        Decision.allow(policy_ids=["a"], reasons=["ok"]),
        Decision.require_approval(["manager", "finance"], ["big"], 2, policy_ids=["b"]),
        Decision.require_approval(["auditor", "manager"], ["odd"], 3, policy_ids=["c"]),
        Decision.require_approval(["manager"], ["plain"], policy_ids=["d"]),
    ])
    assert decision.needs_approval
    assert decision.roles == ("auditor", "finance", "manager")
    assert decision.quorum == 3
    assert decision.reasons == ("big", "odd", "plain")
    assert decision.policy_ids == ("b", "c", "d")


def test_combine_allows_when_all_allow() -> None:
    decision = combine([Decision.allow(policy_ids=["a"], reasons=["ra"]),
                        Decision.allow(policy_ids=["b", "c"], reasons=["rb"])])
    assert decision.allowed
    assert decision.policy_ids == ("a", "b", "c")
    assert decision.reasons == ("ra", "rb")


def test_require_approval_sorts_and_dedups_roles() -> None:
    decision = Decision.require_approval(["manager", "finance", "manager"], ["r"])
    assert decision.roles == ("finance", "manager")
    assert decision.quorum == 1


# -- properties --------------------------------------------------------------------------------

REFUND = """
@id("same-tenant")
permit (principal, action == Action::"issue_refund", resource)
when { principal.tenant == resource.tenant
       && (principal in Role::"support" || principal.roles.contains("manager")) };

@id("manager-approval") @approval("manager") @reason("refunds over 100.00 need a manager")
forbid (principal, action == Action::"issue_refund", resource)
when { BIG };

@id("refund-limit") @reason("refunds on a thread add up to at most 500.00")
forbid (principal, action == Action::"issue_refund", resource)
when { context.cumulative.amount.greaterThan(decimal("500.00")) };
"""
# The same rules for amounts given as Decimals (or decimal strings) and as ints (Longs).
REFUND_POLICIES = {
    "decimal": Policy.from_cedar(
        REFUND.replace("BIG", 'context.args.amount.greaterThan(decimal("100.00"))')),
    "long": Policy.from_cedar(REFUND.replace("BIG", "context.args.amount > 100")),
}

tenants = st.sampled_from(["acme", "acme", "acme", "globex"])
principals = st.builds(
    Principal, id=st.sampled_from(["alice", "bob", "bot"]), tenant=tenants,
    roles=st.sampled_from([frozenset(c) for n in range(4)
                           for c in combinations(["support", "manager", "auditor"], n)]),
    kind=st.sampled_from(["user", "service"]))
thread_tenants = st.sampled_from(["acme", "acme", "acme", "acme", "globex", None])


def cents_in(*ranges: tuple[int, int]) -> st.SearchStrategy[Decimal]:
    return st.sampled_from(ranges).flatmap(lambda r: st.integers(*r)).map(
        lambda cents: Decimal(cents).scaleb(-2))


# Money 0.00..1000.00, drawn from ranges so that every outcome is common: Hypothesis favours
# small integers, which would seldom cross the 100.00 and 500.00 thresholds.
money = cents_in((0, 10_000), (9_990, 10_010), (10_001, 40_000), (10_001, 40_000),
                 (40_001, 100_000))
priors = st.none() | cents_in((0, 10_000), (0, 40_000), (40_001, 100_000))
forms = st.sampled_from(["str", "decimal", "int"])


def refund_request(principal: Principal, thread_tenant: str | None, amount: Any,
                   prior: Decimal | None) -> PolicyRequest:
    history = {"lookup": ActionHistory(count=1, succeeded=1)}
    if prior is not None:
        history["issue_refund"] = ActionHistory(count=1, succeeded=1, totals={"amount": prior})
    return PolicyRequest(principal, "issue_refund", {"amount": amount, "note": "damaged"},
                         ThreadFacts("T1", thread_tenant, "alice"), None, history)


def as_form(amount: Decimal, form: str) -> Any:
    return {"str": str(amount), "decimal": amount, "int": int(amount)}[form]


def oracle(principal: Principal, thread_tenant: str | None, amount: Decimal, form: str,
           kind: str, prior: Decimal | None) -> tuple[str, tuple[str, ...]]:
    """(effect, policy ids) of REFUND_POLICIES[kind], in plain Python."""
    if (form == "int") != (kind == "long"):
        return "deny", ("manager-approval",)  # compares a Long with a decimal: fails closed
    if (prior or Decimal(0)) + amount > Decimal("500.00"):
        return "deny", ("refund-limit",)
    permitted = (thread_tenant is not None and principal.tenant == thread_tenant
                 and bool(principal.roles & {"support", "manager"}))
    if not permitted:
        return "deny", ()
    if amount > Decimal("100.00"):
        return "approval", ("manager-approval", "same-tenant")
    return "allow", ("same-tenant",)


@ORACLE
@given(principals, thread_tenants, money, forms, st.sampled_from([False, False, False, True]),
       priors)
@example(MANAGER, "acme", Decimal("100.01"), "str", False, Decimal("399.99"))  # approval
@example(MANAGER, "acme", Decimal("100.00"), "decimal", False, Decimal("400.00"))  # allow
@example(ALICE, "acme", Decimal("101"), "int", False, None)  # approval, as a Long
@example(ALICE, "acme", Decimal("100"), "int", False, Decimal("400.00"))  # allow, as a Long
@example(ALICE, "acme", Decimal("0.01"), "str", False, Decimal("500.00"))  # over the limit
@example(ALICE, "acme", Decimal("150.00"), "int", True, None)  # a Long meets a decimal policy
@example(ALICE, "acme", Decimal("150.00"), "str", True, None)  # a decimal meets a Long one
def test_the_refund_policy_matches_its_oracle(principal: Principal, thread_tenant: str | None,
                                              money_amount: Decimal, form: str, mismatch: bool,
                                              prior: Decimal | None) -> None:
    kind = "long" if (form == "int") != mismatch else "decimal"
    value = as_form(money_amount, form)
    amount = Decimal(value) if form == "int" else money_amount
    decision = REFUND_POLICIES[kind].evaluate(refund_request(principal, thread_tenant, value,
                                                             prior))
    effect, ids = oracle(principal, thread_tenant, amount, form, kind, prior)
    event(f"{effect} {ids}")
    assert (decision.effect, decision.policy_ids) == (effect, ids)
    assert decision.enforced
    if effect == "approval":
        assert decision.roles == ("manager",) and decision.quorum == 1
        assert decision.reasons == ("refunds over 100.00 need a manager",)
    else:
        assert decision.roles == ()


@FEW
@given(principals, thread_tenants, money, forms, priors)
def test_evaluation_is_pure(principal: Principal, thread_tenant: str | None, amount: Decimal,
                            form: str, prior: Decimal | None) -> None:
    req = refund_request(principal, thread_tenant, as_form(amount, form), prior)
    policy = REFUND_POLICIES["decimal"]
    first = policy.evaluate(req)
    assert policy.evaluate(req) == first
    assert Policy.from_cedar(policy.text).evaluate(req) == first
    assert first.to_dict() == policy.evaluate(req).to_dict()


SHADOW_TEXTS = [
    DENY_ALL,
    PERMIT_ALL,
    "",
    f'{PERMIT_ALL}\n@approval("auditor") @quorum("3") forbid (principal, action, resource);',
    f"{PERMIT_ALL}\nforbid (principal, action, resource) when {{ context.args.missing }};",
    when('context.cumulative.amount.lessThan(decimal("50.00"))'),
]
SHADOWS = [Policy.from_cedar(text, enforce=False) for text in SHADOW_TEXTS]


@PROPS
@given(principals, thread_tenants, money, forms, priors,
       st.lists(st.sampled_from(SHADOWS), min_size=1, max_size=3), st.booleans())
def test_shadow_policies_never_change_the_enforced_decision(
        principal: Principal, thread_tenant: str | None, amount: Decimal, form: str,
        prior: Decimal | None, shadows: list[Policy], shadow_first: bool) -> None:
    req = refund_request(principal, thread_tenant, as_form(amount, form), prior)
    enforced = REFUND_POLICIES["decimal"]
    policies = (*shadows, enforced) if shadow_first else (enforced, *shadows)
    alone = rails(enforced).decide(req)
    both = rails(*policies).decide(req)
    assert both == alone  # shadow is not compared; everything else is
    assert both.enforced
    assert both.shadow == tuple(s.evaluate(req) for s in shadows)
    assert all(not d.enforced for d in both.shadow)


def decimals_with(places: range, limit: int = 10**14) -> st.SearchStrategy[Decimal]:
    return st.sampled_from(list(places)).flatmap(
        lambda p: st.decimals(min_value=-limit, max_value=limit, places=p,
                              allow_nan=False, allow_infinity=False))


@PROPS
@given(decimals_with(range(5)), st.integers(0, 4))
def test_a_decimal_that_fits_is_a_cedar_decimal(value: Decimal, extra_zeros: int) -> None:
    # The same value with trailing zeros beyond four places still fits.
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    written = value.quantize(Decimal(1).scaleb(exponent - extra_zeros))
    assert written == value
    typed = cedar_value(written)
    assert isinstance(typed, dict) and typed["__extn"]["fn"] == "decimal"
    arg = typed["__extn"]["arg"]
    assert re.fullmatch(r"-?\d+\.\d{1,4}", arg)
    assert Decimal(arg) == value
    assert Decimal(cedar_value(arg)["__extn"]["arg"]) == value  # the string form agrees


@FEW
@given(decimals_with(range(5), limit=10**6))
def test_cedar_accepts_the_decimals_it_is_given(value: Decimal) -> None:
    arg = cedar_value(value)["__extn"]["arg"]
    text = when(f'context.args.x == decimal("{arg}") && context.args.x.lessThan(decimal("'
                f'{Decimal(arg) + 1:f}"))')
    assert decide(text, {"x": value}).allowed


@PROPS
@given(decimals_with(range(5, 9)))
def test_a_decimal_with_more_places_falls_back_to_a_string(value: Decimal) -> None:
    assume(value != value.quantize(Decimal("0.0001")))
    assert cedar_value(value) == str(value)
