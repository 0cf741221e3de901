"""The redactor: each detector's hits and near misses, custom patterns, nested values, and
properties (idempotence, no leaks, digit-free text untouched) over generated text. No database.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import string
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from steward.errors import ConfigError
from steward.guardrails.redact import DEFAULT, Detector, Finding, Redactor

PROPS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=50, deadline=None)


def _luhn_complete(body: str) -> str:
    """``body`` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit sits to its right
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str(-total % 10)


def _luhn_ok(number: str) -> bool:
    return _luhn_complete(number[:-1]) == number


def _iban(country: str, bban: str) -> str:
    """The IBAN of ``bban`` in ``country`` with its ISO 13616 check digits."""
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - numeric % 97:02d}{bban}"


def _groups(s: str, sizes: list[int], sep: str) -> str:
    out, pos = [], 0
    for size in sizes:
        out.append(s[pos:pos + size])
        pos += size
    return sep.join(out)


def _in_fours(s: str, sep: str = " ") -> str:
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


def _splice(text: str, findings: list[Finding]) -> str:
    out, last = [], 0
    for f in findings:
        out += [text[last:f.start], f"[REDACTED:{f.detector}]"]
        last = f.end
    return "".join([*out, text[last:]])


def _compact(s: str) -> str:
    return re.sub(r"[\s().-]", "", s)


# -- detectors, one value at a time ------------------------------------------------------------

HITS = [
    ("email", "alice@example.com"),
    ("email", "alice.smith+tag@mail.example.co.uk"),
    ("email", "o'brien@example.ie"),
    ("email", "BOB_99@Example.ORG"),
    ("email", "ivan@xn--80akhbyknj4f.xn--p1ai"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+44 (0)20 7946 0958"),
    ("phone", "+1 (555) 123-4567"),
    ("phone", "+1.555.123.4567"),
    ("phone", "+33 1 23 45 67 89"),
    ("phone", "+4915112345678"),
    ("phone", "(555) 123-4567"),
    ("phone", "555-123-4567"),
    ("phone", "555.123.4567"),
    ("phone", "555 123 4567"),
    ("phone", "1-800-555-0199"),
    ("phone", "020 7946 0958"),
    ("phone", "07700 900123"),
    ("phone", "(030) 1234567"),
    ("phone", "01 23 45 67 89"),
    ("card", "4111111111111111"),
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "6011 0009 9013 9424"),
    ("card", "378282246310005"),
    ("card", "3782 822463 10005"),
    ("card", "4222222222222"),  # 13 digits
    ("card", "4000 0000 0000 0000 006"),  # 19 digits
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "DE89370400440532013000"),
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "NO9386011117947"),  # the shortest IBANs: 15 characters
    ("iban", "de89 3704 0044 0532 0130 00"),
    ("national_id", "123-45-6789"),
    ("national_id", "078-05-1120"),
    ("national_id", "QQ 12 34 56 C"),
    ("national_id", "QQ123456C"),
    ("national_id", "AB 123456 D"),
]


@pytest.mark.parametrize(("name", "value"), HITS)
def test_each_detector_masks_its_values(name: str, value: str) -> None:
    text = f"see {value}, thanks"
    assert DEFAULT.redact_text(text) == f"see [REDACTED:{name}], thanks"
    assert DEFAULT.findings(text) == [Finding(name, 4, 4 + len(value))]
    assert Redactor(detectors=[name]).redact_text(value) == f"[REDACTED:{name}]"


MISSES = [
    "120.00", "1,234.56", "+12345.67", "total 120.00 EUR",  # amounts
    "2026-11-22", "22.11.2026", "01.02.2026", "11/22/2026", "10:30",  # dates and times
    "98765", "order 98765 shipped", "ORD-0012345", "ISBN 978-3-16-148410-0",  # order ids
    "v1.2.3", "192.168.1.10", "555-1234",
    "4111111111111112", "4111 1111 1111 1112", "1234567890123456",  # fail Luhn
    "DE88 3704 0044 0532 0130 00", "DE88370400440532013000",  # wrong IBAN check digits
    "000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000",  # never issued
    "GB 12 34 56 A", "QQ 12 34 56 E", "AO 12 34 56 A",  # not NINOs
    "user@localhost", "@handle", "a@b",
]


@pytest.mark.parametrize("text", MISSES)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert DEFAULT.redact_text(text) == text
    assert DEFAULT.findings(text) == []


def test_a_sentence_of_numbers_keeps_its_numbers() -> None:
    text = "Order 98765 for 120.00 EUR ships on 2026-11-22; call 020 7946 0958 to change it."
    assert DEFAULT.redact_text(text) == ("Order 98765 for 120.00 EUR ships on 2026-11-22; "
                                         "call [REDACTED:phone] to change it.")


def test_a_full_stop_after_an_email_is_prose() -> None:
    assert DEFAULT.redact_text("Write to bob@example.com.") == "Write to [REDACTED:email]."


def test_quotes_around_an_email_stay() -> None:
    assert DEFAULT.redact_text("'bob@example.com' or `eve@example.org`") == (
        "'[REDACTED:email]' or `[REDACTED:email]`")


def test_a_card_followed_by_other_digits_is_found_at_its_own_length() -> None:
    # 4111 1111 1111 1111 123 fails Luhn as 19 digits; the 16 before the space pass.
    assert DEFAULT.redact_text("4111 1111 1111 1111 123") == "[REDACTED:card] 123"
    assert DEFAULT.redact_text("BE68 5390 0754 7034 ABCD") == "[REDACTED:iban] ABCD"


def test_a_card_after_a_number_is_still_masked_whole() -> None:
    # 1234 4111 1111 1111 (the first 16 digits) may pass Luhn by chance; the card must not leak.
    for text in ("1234 4111 1111 1111 1111", "9 4111 1111 1111 1111"):
        assert "4111" not in DEFAULT.redact_text(text)


def test_a_value_exposed_by_masking_another_is_masked_too() -> None:
    # "m+44": the phone is glued to the address, and only found once the address is gone.
    text = "a@b.com+44 20 7946 0958"
    assert DEFAULT.redact_text(text) == "[REDACTED:email][REDACTED:phone]"
    assert DEFAULT.findings(text) == [Finding("email", 0, 7), Finding("phone", 7, 23)]


# -- findings and overlaps ---------------------------------------------------------------------


def test_findings_hold_positions_not_values() -> None:
    assert [f.name for f in dataclasses.fields(Finding)] == ["detector", "start", "end"]
    text = "mail alice@example.com or call +1 (555) 123-4567"
    found = DEFAULT.findings(text)
    assert found == [Finding("email", 5, 22), Finding("phone", 31, 48)]
    assert [text[f.start:f.end] for f in found] == ["alice@example.com", "+1 (555) 123-4567"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].start = 0  # type: ignore[misc]


def test_overlaps_go_to_the_earlier_start_and_cover_both() -> None:
    r = Redactor(detectors=[], custom={"first": "ab", "second": "bcd"})
    assert r.findings("xabcdx") == [Finding("first", 1, 5)]
    assert r.redact_text("xabcdx") == "x[REDACTED:first]x"


def test_at_the_same_start_the_longer_match_wins() -> None:
    r = Redactor(detectors=[], custom={"short": "ab", "long": "abc"})
    assert r.findings("abcd") == [Finding("long", 0, 3)]


def test_at_the_same_span_the_earlier_detector_wins() -> None:
    r = Redactor(detectors=[], custom={"one": "ab", "two": "ab"})
    assert r.findings("ab") == [Finding("one", 0, 2)]
    # A built-in comes before any custom pattern.
    assert DEFAULT.with_pattern("digits", r"\d{3}-\d{2}-\d{4}").findings("123-45-6789") == [
        Finding("national_id", 0, 11)]


def test_placeholders_are_never_masked_again() -> None:
    r = DEFAULT.with_pattern("caps", r"[A-Z]{2,}")
    once = r.redact_text("NASA wrote to bob@example.com")
    assert once == "[REDACTED:caps] wrote to [REDACTED:email]"
    assert r.redact_text(once) == once
    assert r.findings(once) == []


# -- configuration -----------------------------------------------------------------------------


def test_the_default_redactor_has_every_built_in() -> None:
    names = ["email", "card", "iban", "national_id", "phone"]
    assert [d.name for d in DEFAULT.detectors] == names
    assert [d.name for d in Redactor.default().detectors] == names
    assert repr(DEFAULT) == "Redactor(email, card, iban, national_id, phone)"
    assert all(isinstance(d, Detector) for d in DEFAULT.detectors)


def test_a_subset_of_detectors_masks_only_those() -> None:
    r = Redactor(detectors=["phone", "email"])
    assert [d.name for d in r.detectors] == ["email", "phone"]  # built-in order, not the caller's
    text = "bob@example.com 555-123-4567 4111111111111111"
    assert r.redact_text(text) == "[REDACTED:email] [REDACTED:phone] 4111111111111111"


def test_custom_patterns_mask_like_built_ins() -> None:
    r = Redactor(custom={"order_secret": r"SECRET-\d+"})
    assert r.redact_text("code SECRET-42, mail a@b.io") == (
        "code [REDACTED:order_secret], mail [REDACTED:email]")
    compiled = Redactor(custom={"ticket": re.compile(r"(?i)tkt-\d{4}")})
    assert compiled.redact_text("see TKT-1234") == "see [REDACTED:ticket]"


def test_with_pattern_returns_a_new_redactor() -> None:
    base = Redactor.default()
    extended = base.with_pattern("order_secret", r"SECRET-\d+")
    assert extended.redact_text("SECRET-7") == "[REDACTED:order_secret]"
    assert base.redact_text("SECRET-7") == "SECRET-7"
    assert [d.name for d in extended.detectors][-1] == "order_secret"


@pytest.mark.parametrize("make", [
    lambda: Redactor(custom={"order_secret": r"SECRET-(\d+"}),
    lambda: Redactor.default().with_pattern("order_secret", r"SECRET-(\d+"),
])
def test_a_pattern_that_does_not_compile_is_a_config_error(make: Any) -> None:
    with pytest.raises(ConfigError, match=r"'order_secret'.*not a valid regular expression") as e:
        make()
    assert "Fix the expression" in str(e.value)
    assert isinstance(e.value.__cause__, re.error)


@pytest.mark.parametrize(("custom", "message"), [
    ({"anything": r"x*"}, "matches the empty string"),
    ({"email": r"mail"}, "already exists"),
    ({"bad name": r"x"}, "must be a letter followed by"),
    ({"1st": r"x"}, "must be a letter followed by"),
    ({"number": 42}, "must be a regular expression string"),
    ({"raw": re.compile(rb"x")}, "bytes pattern"),
])
def test_bad_custom_patterns_are_config_errors(custom: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Redactor(custom=custom)


def test_with_pattern_refuses_a_name_already_taken() -> None:
    with pytest.raises(ConfigError, match="already exists"):
        Redactor(custom={"order": "A"}).with_pattern("order", "B")


def test_an_unknown_detector_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown detector 'passport'.*"
                                          r"email, card, iban, national_id, phone"):
        Redactor(detectors=["email", "passport"])
    with pytest.raises(ConfigError, match="list of names"):
        Redactor(detectors="email")


# -- values ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Contact:
    name: str
    email: str
    age: int


class Ticket(BaseModel):
    subject: str
    contact: dict[str, str]
    amount: Decimal


class Pair(NamedTuple):
    left: str
    right: int


def test_redact_walks_nested_values_and_keeps_their_shape() -> None:
    when = datetime(2026, 11, 22, tzinfo=timezone.utc)
    opaque = object()
    payload = {
        "to": "alice@example.com",
        "items": ["call 555-123-4567", 3, 2.5, None, True, Decimal("120.00")],
        "pair": ("4111 1111 1111 1111", Decimal("120.00")),
        "named": Pair("DE89 3704 0044 0532 0130 00", 1),
        "contact": Contact("Bob", "bob@example.com", 41),
        "ticket": Ticket(subject="refund for 123-45-6789", contact={"email": "eve@example.org"},
                         amount=Decimal("9.99")),
        "tags": {"x@example.com"},
        "frozen": frozenset({"y@example.com"}),
        "when": when,
        "opaque": opaque,
        "bob@example.com": "keys are kept",
    }
    out = DEFAULT.redact(payload)
    assert out == {
        "to": "[REDACTED:email]",
        "items": ["call [REDACTED:phone]", 3, 2.5, None, True, Decimal("120.00")],
        "pair": ("[REDACTED:card]", Decimal("120.00")),
        "named": Pair("[REDACTED:iban]", 1),
        "contact": {"name": "Bob", "email": "[REDACTED:email]", "age": 41},
        "ticket": {"subject": "refund for [REDACTED:national_id]",
                   "contact": {"email": "[REDACTED:email]"}, "amount": Decimal("9.99")},
        "tags": {"[REDACTED:email]"},
        "frozen": frozenset({"[REDACTED:email]"}),
        "when": when,
        "opaque": opaque,
        "bob@example.com": "keys are kept",
    }
    assert type(out["pair"]) is tuple and type(out["named"]) is Pair
    assert type(out["frozen"]) is frozenset
    assert out["when"] is when and out["opaque"] is opaque
    assert payload["to"] == "alice@example.com"  # the input is not modified


@pytest.mark.parametrize("value", [7, 2.5, True, None, Decimal("120.00"), b"a@b.com", object()])
def test_scalars_and_unknown_objects_come_back_as_they_are(value: Any) -> None:
    assert DEFAULT.redact(value) is value


def test_redact_of_a_plain_string_is_redact_text() -> None:
    assert DEFAULT.redact("bob@example.com") == "[REDACTED:email]"
    assert DEFAULT.redact([Contact("a", "b@c.de", 1)]) == [
        {"name": "a", "email": "[REDACTED:email]", "age": 1}]


def test_a_value_that_contains_itself_is_a_config_error() -> None:
    loop: list[Any] = ["a@b.com"]
    loop.append(loop)
    with pytest.raises(ConfigError, match="contains itself"):
        DEFAULT.redact(loop)
    shared = ["a@b.com"]  # the same list twice is not a cycle
    assert DEFAULT.redact([shared, shared]) == [["[REDACTED:email]"]] * 2


# -- generated values --------------------------------------------------------------------------

_LOCAL = r"[A-Za-z0-9_%+-]{1,10}(\.[A-Za-z0-9_%+-]{1,10}){0,2}"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?"
emails = st.from_regex(rf"{_LOCAL}@{_LABEL}(\.{_LABEL}){{0,2}}\.[A-Za-z]{{2,6}}", fullmatch=True)


@st.composite
def cards(draw: st.DrawFn) -> str:
    """A Luhn-valid number of 13 to 19 digits, written plain, in fours, or 4-6-5 (Amex)."""
    length = draw(st.integers(13, 19))
    number = _luhn_complete(draw(st.text(string.digits, min_size=length - 1,
                                         max_size=length - 1)))
    sep = draw(st.sampled_from(["", " ", "-"]))
    if not sep:
        return number
    if length in (14, 15) and draw(st.booleans()):
        return _groups(number, [4, 6, length - 10], sep)
    return _in_fours(number, sep)


@st.composite
def ibans(draw: st.DrawFn) -> str:
    """A valid IBAN (any two letters as the country), plain or in groups of four."""
    country = draw(st.text(string.ascii_uppercase, min_size=2, max_size=2))
    bban = draw(st.text(string.ascii_uppercase + string.digits, min_size=11, max_size=30))
    iban = _iban(country, bban)
    return _in_fours(iban) if draw(st.booleans()) else iban


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    return f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"


@st.composite
def ninos(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from("ABCEGHJKLMNPQRSTWXYZ")) + draw(
        st.sampled_from("ABCEGHJKLMNPQRSTWXYZ"))
    digits = draw(st.text(string.digits, min_size=6, max_size=6))
    suffix = draw(st.sampled_from("ABCD"))
    if prefix in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        prefix = "QQ"
    sep = draw(st.sampled_from(["", " "]))
    return sep.join([prefix, digits[:2], digits[2:4], digits[4:], suffix])


@st.composite
def phones(draw: st.DrawFn) -> str:
    """North American and international numbers in their usual spellings."""
    d = draw(st.text(string.digits, min_size=10, max_size=10))
    area, exchange, line = d[:3], d[3:6], d[6:]
    return draw(st.sampled_from([
        f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}",
        f"{area} {exchange} {line}", f"+1 {area} {exchange} {line}", f"+1-{area}-{exchange}-{line}",
        f"+44 {d[:2]} {d[2:6]} {d[6:]}", f"+49{d}", f"+33 {_groups(d[1:], [1, 2, 2, 2, 2], ' ')}",
    ]))


@st.composite
def trunk_phones(draw: st.DrawFn) -> str:
    """National numbers with a leading 0: 020 7946 0958, 07700 900123, (030) 1234567."""
    d = draw(st.text(string.digits, min_size=9, max_size=9))
    lead = draw(st.sampled_from("123456789"))
    return draw(st.sampled_from([
        f"0{lead}{d[0]} {d[1:5]} {d[5:]}", f"0{lead}{d[:3]} {d[3:]}", f"(0{lead}{d[0]}) {d[1:]}",
    ]))


sensitive = st.one_of(
    emails.map(lambda v: ("email", v)),
    cards().map(lambda v: ("card", v)),
    ibans().map(lambda v: ("iban", v)),
    ssns().map(lambda v: ("national_id", v)),
    ninos().map(lambda v: ("national_id", v)),
    phones().map(lambda v: ("phone", v)),
)
fillers = st.text(max_size=20)


def test_the_generators_make_valid_values() -> None:
    assert _luhn_ok(_luhn_complete("411111111111111"))
    assert _iban("DE", "370400440532013000") == "DE89370400440532013000"
    assert _iban("GB", "WEST12345698765432") == "GB82WEST12345698765432"


@PROPS
@given(st.sampled_from([DEFAULT, DEFAULT.with_pattern("caps", r"[A-Z]{2,}")]), st.text())
def test_redaction_is_idempotent_on_any_text(r: Redactor, s: str) -> None:
    once = r.redact_text(s)
    assert r.redact_text(once) == once


@PROPS
@given(st.lists(fillers | sensitive.map(lambda kv: kv[1]) | trunk_phones(), max_size=6),
       st.sampled_from(["", " ", "\n", "-", ".", "+", "@"]))
def test_redaction_is_idempotent_on_text_with_personal_data(parts: list[str], sep: str) -> None:
    s = sep.join(parts)
    once = DEFAULT.redact_text(s)
    assert DEFAULT.redact_text(once) == once


@PROPS
@given(sensitive, fillers, fillers)
def test_a_value_between_spaces_never_leaks(kind_value: tuple[str, str], before: str,
                                            after: str) -> None:
    kind, value = kind_value
    text = f"{before} {value} {after}"
    start = len(before) + 1
    end = start + len(value)
    out = DEFAULT.redact_text(text)
    assert value not in out
    if _compact(value) not in _compact(before) + _compact(after):
        assert _compact(value) not in _compact(out)
    # One finding covers the value; it may carry another name when the value merged with a
    # neighbour ("+1 4111 1111 1111 1111" starts as a phone).
    found = DEFAULT.findings(text)
    assert any(f.start <= start and end <= f.end for f in found), (kind, found)


@PROPS
@given(trunk_phones(), fillers.filter(lambda s: not s[-1:].isdigit()), fillers)
def test_a_national_number_never_leaks_unless_it_follows_a_number(
        value: str, before: str, after: str) -> None:
    # "12 020 7946 0958" reads as one run of digit groups, not a phone: see the phone pattern.
    text = f"{before} {value} {after}"
    start = len(before) + 1
    assert value not in DEFAULT.redact_text(text)
    assert any(f.start <= start and start + len(value) <= f.end for f in DEFAULT.findings(text))


@PROPS
@given(st.text(st.characters(exclude_categories=["Nd"], exclude_characters="@")))
def test_text_without_digits_or_at_signs_is_unchanged(s: str) -> None:
    assert DEFAULT.redact_text(s) == s
    assert DEFAULT.findings(s) == []


@PROPS
@given(st.text() | st.lists(fillers | sensitive.map(lambda kv: kv[1])).map(" ".join))
def test_findings_describe_exactly_what_is_masked(s: str) -> None:
    found = DEFAULT.findings(s)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    assert all(0 <= f.start < f.end <= len(s) for f in found)
    assert DEFAULT.redact_text(s) == _splice(s, found)


@PROPS
@given(st.text(string.digits, min_size=16, max_size=16).filter(lambda n: not _luhn_ok(n)),
       st.sampled_from(["", " ", "-"]))
def test_sixteen_digits_failing_luhn_are_not_a_card(number: str, sep: str) -> None:
    text = _in_fours(number, sep) if sep else number
    assert DEFAULT.redact_text(text) == text


@FEW
@given(ibans(), st.integers(0, 99))
def test_an_iban_with_wrong_check_digits_is_not_an_iban(iban: str, check: int) -> None:
    compact = iban.replace(" ", "")
    assume((check - int(compact[2:4])) % 97 != 0)  # 02 and 99 are the same check modulo 97
    wrong = f"{compact[:2]}{check:02d}{compact[4:]}"
    only_iban = Redactor(detectors=["iban"])
    assert only_iban.redact_text(wrong) == wrong
    # Written in groups, its last group may be read as text after a shorter, valid IBAN (a
    # 1-in-97 chance); the whole is still never taken for an IBAN.
    grouped = _in_fours(wrong)
    assert Finding("iban", 0, len(grouped)) not in only_iban.findings(grouped)
