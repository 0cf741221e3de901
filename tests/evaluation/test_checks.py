"""The checks trace each row of a system of record to an effect call in its thread's audit
trail, also when the trail holds the call's key masked by the runtime's redactor."""

from __future__ import annotations

from steward.evaluation.checks import _Keys
from steward.guardrails.redact import Redactor

# A key as Steward makes them ("stw-" and 32 hex digits) that the default redactor takes for
# an IBAN (two letters, two digits, mod 97): about one key in 1,800 is masked in the trail.
TAKEN_FOR_AN_IBAN = "stw-fa88c957d47b1c4250995f6f083c4381"


def test_a_key_the_redactor_masks_is_still_traced() -> None:
    redact = Redactor.default().redact_text
    assert redact(TAKEN_FOR_AN_IBAN) == "stw-[REDACTED:iban]"
    keys = _Keys({"stw-00000000000000000000000000000001"}, {redact(TAKEN_FOR_AN_IBAN)}, redact)
    assert keys.traced("stw-00000000000000000000000000000001")
    assert keys.traced(TAKEN_FOR_AN_IBAN)  # masked alike
    assert not keys.traced("stw-00000000000000000000000000000002")
    assert not keys.traced("sabotage-refund-001")  # a row nobody's effect wrote
    assert keys.named("G-0000000001", "G-") and keys.named("G-UNKNOWN", "G-")  # a key masked


def test_without_masked_keys_a_row_must_be_named_after_one() -> None:
    keys = _Keys({"stw-00000000000000000000000000000001"}, set(), Redactor.default().redact_text)
    assert keys.named("G-0000000001", "G-") and not keys.named("G-0000000002", "G-")
