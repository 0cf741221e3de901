"""Masking of personal data in whatever leaves an agent's working context.

Approval payloads pass through a :class:`Redactor` before a reviewer sees them or they are
stored; audit events, traces and memory will follow. Each detected value becomes
``[REDACTED:<detector>]``.

Two promises shape the code:

* Redacting twice changes nothing. Text already shaped like a placeholder is never scanned, and
  scanning repeats until a pass finds nothing, because masking one value can expose another
  (``a@b.com+44 20 7946 0958``: the phone is glued to the address until that is gone).
* A value is masked whole or not found at all. Where two matches overlap, the earlier start
  (then the longer) names the finding and the finding covers both, so no tail of either leaks.

Precision comes from checks rather than looser patterns: a card must pass Luhn, an IBAN
ISO 13616 mod-97, a phone must not be shaped like a date or an amount. Only ASCII digits and
letters are recognised.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from steward.errors import ConfigError

__all__ = ["DEFAULT", "Detector", "Finding", "Redactor"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Any redactor's placeholder, whatever its detectors, so text redacted elsewhere stays put.
_PLACEHOLDER = re.compile(r"\[REDACTED:[A-Za-z][A-Za-z0-9_]*\]")


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of personal data: a pattern proposes candidates, an optional check confirms one.

    A candidate the check rejects is retried once, shorter, at the same start (only where the
    text has a boundary, so a number is never cut in two); a detector with a check is also tried at
    every start inside an earlier match: a checksum can pass by chance on a window that swallowed
    a neighbouring number, and the real value then starts inside it.
    """

    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"detector name {self.name!r} must be a letter followed by letters, digits or "
                "underscores, because it is written into [REDACTED:<name>]."
            )


@dataclass(frozen=True, slots=True)
class Finding:
    """Where a detector matched, as offsets into the scanned text.

    It holds no part of the value, so findings can be logged or counted safely.
    """

    detector: str
    start: int
    end: int


# -- checks ------------------------------------------------------------------------------------


def _digits(s: str) -> str:
    return "".join(c for c in s if "0" <= c <= "9")


def _luhn(s: str) -> bool:
    digits = _digits(s)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_mod97(s: str) -> bool:
    compact = s.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# A day-month-year or year-month-day written with one separator throughout: 01.02.2026.
_DATE_LIKE = re.compile(r"\d{4}([-. ])\d{1,2}\1\d{1,2}|\d{1,2}([-. ])\d{1,2}\2\d{2,4}", re.ASCII)
_AMOUNT_LIKE = re.compile(r"\+?\d+\.\d{1,2}", re.ASCII)  # +12345.67
# Three groups of four is how card numbers are written, not national numbers: 0100 0000 0000.
_CARD_LIKE = re.compile(r"\d{4}[ .-]\d{4}[ .-]\d{4}", re.ASCII)


def _phone_ok(s: str) -> bool:
    return (7 <= len(_digits(s)) <= 15 and not _DATE_LIKE.fullmatch(s)
            and not _AMOUNT_LIKE.fullmatch(s)
            and (s.startswith("+") or not _CARD_LIKE.search(s)))


# -- built-in detectors ------------------------------------------------------------------------

_FLAGS = re.VERBOSE | re.ASCII

_EMAIL = Detector("email", re.compile(r"""
    (?<![A-Za-z0-9._%+-]) (?<![A-Za-z0-9._%+-]')
    [A-Za-z0-9._%+-]+ (?:'[A-Za-z0-9._%+-]+)*           # o'brien, but not a leading quote
    @ (?:[A-Za-z0-9-]+\.)+ (?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]+)
    (?![A-Za-z0-9-]) (?!\.[A-Za-z0-9])                  # whole domain; a final full stop is prose
""", _FLAGS))

_CARD = Detector("card", re.compile(r"""
    (?<!\d)
    (?: \d{4}[ -]\d{6}[ -]\d{4,5}                       # 3782 822463 10005
      | \d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?         # 4111 1111 1111 1111
      | \d{13,19} )
    (?!\d)
""", _FLAGS), _luhn)

_IBAN = Detector("iban", re.compile(r"""
    (?<![A-Za-z0-9])
    [A-Za-z]{2}\d{2}
    (?: [A-Za-z0-9]{11,30}                              # DE89370400440532013000
      | (?:[ ][A-Za-z0-9]{4}){2,7}(?:[ ][A-Za-z0-9]{1,3})? )  # DE89 3704 0044 0532 0130 00
    (?![A-Za-z0-9])
""", _FLAGS), _iban_mod97)

_NATIONAL_ID = Detector("national_id", re.compile(r"""
    (?: (?<!\d)(?<!\d-)                                 # US SSN, without never-issued numbers
        (?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}
        (?!\d|-\d)
      | (?<![A-Za-z0-9])                                # UK NINO; Q is kept for QQ 12 34 56 C
        (?!BG|GB|KN|NK|NT|TN|ZZ)
        [A-CEGHJ-TW-Z][A-CEGHJ-NP-TW-Z] [ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]
        (?![A-Za-z0-9]) )
""", _FLAGS))

_PHONE = Detector("phone", re.compile(r"""
    (?<![\w+])
    (?: \+\d{1,3} (?:[ .-]?\(\d{1,4}\))? [ .-]?\d{1,14} (?:[ .-]\d{1,14}){0,6}  # +44 20 7946 0958
      | (?:1[ .-]?)? (?:\(\d{3}\)[ .-]?|\d{3}[ .-]) \d{3}[ .-]\d{4}         # (555) 123-4567
      | (?<!\d[ .-])                  # 020 7946 0958, but not the tail of 3704 0044 0532 0130
        (?:\(0[1-9]\d{0,3}\)[ .-]?|0[1-9]\d{0,3}[ .-]) \d{2,8} (?:[ .-]\d{2,8}){0,4}
    )
    (?!\w|[.-]\d)
""", _FLAGS), _phone_ok)

# Also the tie-break order: at the same span the checksummed detectors name the finding.
_BUILTINS: tuple[Detector, ...] = (_EMAIL, _CARD, _IBAN, _NATIONAL_ID, _PHONE)
_BY_NAME = {d.name: d for d in _BUILTINS}
_MAYBE = re.compile(r"[0-9@]")  # what every built-in detector's match contains


# -- scanning ----------------------------------------------------------------------------------


def _gaps(text: str) -> Iterator[tuple[int, int]]:
    """The stretches of ``text`` between placeholders: only these are scanned."""
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            yield pos, m.start()
        pos = m.end()
    if pos < len(text):
        yield pos, len(text)


def _ends(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterator[int]:
    """End of the match at ``start``, then of the longest shorter one that ends at a boundary.

    One step back only: enough for a value followed by one unrelated group (a card, then
    `` 123``), while each further step would be another chance for a checksum to pass by luck.
    """
    yield end
    limit = end - 1
    while limit > start:
        m = pattern.match(text, start, limit)
        if m is None:
            return
        if m.end() == len(text) or not text[m.end()].isalnum():
            yield m.end()
            return
        limit = m.end() - 1


def _spans(det: Detector, text: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Accepted ``(start, end)`` spans of one detector in ``text[lo:hi]``."""
    pos = lo
    while pos < hi:
        m = det.pattern.search(text, pos, hi)
        if m is None:
            return
        start = m.start()
        if det.check is None:
            if m.end() > start:  # an empty match would mask nothing
                yield start, m.end()
                pos = m.end()
            else:
                pos = start + 1
            continue
        check = det.check
        end = next((e for e in _ends(det.pattern, text, start, m.end())
                    if check(text[start:e])), None)
        if end is not None:
            yield start, end
        pos = start + 1


def _custom(name: str, regex: object) -> Detector:
    if isinstance(regex, re.Pattern):
        pattern = regex
    elif isinstance(regex, str):
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise ConfigError(
                f"custom pattern {name!r} ({regex!r}) is not a valid regular expression: {exc}. "
                "Fix the expression, or pass re.escape(text) to match text literally."
            ) from exc
    else:
        raise ConfigError(f"custom pattern {name!r} must be a regular expression string, "
                          f"got a {type(regex).__name__} value.")
    if not isinstance(pattern.pattern, str):
        raise ConfigError(f"custom pattern {name!r} is a bytes pattern; redaction scans text, "
                          "so compile it from a str.")
    if pattern.match("") is not None:
        raise ConfigError(f"custom pattern {name!r} ({pattern.pattern!r}) matches the empty "
                          "string, so it would mask nothing; require at least one character "
                          "(use + rather than *).")
    return Detector(name, pattern)


class Redactor:
    """Finds personal data in text and nested values, and replaces it with placeholders.

    Immutable: :meth:`with_pattern` returns a new redactor, so one can be shared freely.
    """

    __slots__ = ("_detectors",)
    _detectors: tuple[Detector, ...]

    def __init__(self, detectors: Iterable[str] | None = None,
                 custom: Mapping[str, str | re.Pattern[str]] | None = None) -> None:
        """``detectors`` picks built-ins by name (default: all); ``custom`` maps names to regex."""
        if detectors is None:
            chosen = _BUILTINS
        else:
            if isinstance(detectors, str):
                raise ConfigError(f"detectors must be a list of names, like [{detectors!r}], "
                                  "not one string.")
            wanted = list(detectors)
            for name in wanted:
                if not isinstance(name, str) or name not in _BY_NAME:
                    raise ConfigError(
                        f"unknown detector {name!r}; the built-in ones are "
                        f"{', '.join(_BY_NAME)}. Add your own with custom={{name: regex}}.")
            chosen = tuple(d for d in _BUILTINS if d.name in wanted)
        self._detectors = self._checked(chosen, [_custom(n, r) for n, r in (custom or {}).items()])

    @staticmethod
    def _checked(base: tuple[Detector, ...], extra: list[Detector]) -> tuple[Detector, ...]:
        names = {d.name for d in base}
        for det in extra:
            if det.name in names or det.name in _BY_NAME:
                raise ConfigError(
                    f"a detector named {det.name!r} already exists; give the custom pattern "
                    "another name, so its placeholder says which rule masked the value.")
            names.add(det.name)
        return (*base, *extra)

    @classmethod
    def default(cls) -> Redactor:
        """Every built-in detector: email, card, iban, national_id, phone."""
        return cls()

    def with_pattern(self, name: str, regex: str | re.Pattern[str]) -> Redactor:
        """A copy of this redactor that also masks ``regex`` as ``[REDACTED:<name>]``."""
        new = object.__new__(Redactor)
        new._detectors = self._checked(self._detectors, [_custom(name, regex)])
        return new

    @property
    def detectors(self) -> tuple[Detector, ...]:
        """The detectors in tie-break order: built-ins first, then custom ones as added."""
        return self._detectors

    def __repr__(self) -> str:
        return f"Redactor({', '.join(d.name for d in self._detectors)})"

    # -- text ----------------------------------------------------------------------------------

    def _scan(self, text: str) -> list[Finding]:
        """One pass: the findings in ``text``, sorted, overlaps merged into the earliest one."""
        hits = sorted((start, -end, rank)
                      for lo, hi in _gaps(text)
                      for rank, det in enumerate(self._detectors)
                      for start, end in _spans(det, text, lo, hi))
        merged: list[Finding] = []
        for start, neg_end, rank in hits:
            end = -neg_end
            if merged and start < merged[-1].end:
                if end > merged[-1].end:
                    merged[-1] = dataclasses.replace(merged[-1], end=end)
            else:
                merged.append(Finding(self._detectors[rank].name, start, end))
        return merged

    def _resolve(self, text: str, *, locate: bool) -> tuple[str, list[Finding]]:
        """The fully redacted text and, if ``locate``, every finding in ``text``'s offsets.

        Terminates: each pass masks at least one character outside placeholders, and never
        touches a placeholder.
        """
        found: list[Finding] = []
        origin: list[int] | None = None  # offset in `text` of each char of `current`; -1 = ours
        current = text
        hits = self._scan(current)
        while hits:
            if locate:
                found += hits if origin is None else [
                    Finding(h.detector, origin[h.start], origin[h.end - 1] + 1) for h in hits]
                if origin is None:
                    origin = list(range(len(current)))
            pieces: list[str] = []
            new_origin: list[int] = []
            last = 0
            for h in hits:
                placeholder = f"[REDACTED:{h.detector}]"
                pieces += (current[last:h.start], placeholder)
                if origin is not None:
                    new_origin += origin[last:h.start]
                    new_origin += [-1] * len(placeholder)
                last = h.end
            pieces.append(current[last:])
            if origin is not None:
                origin = new_origin + origin[last:]
            current = "".join(pieces)
            hits = self._scan(current)
        found.sort(key=lambda f: f.start)
        return current, found

    def redact_text(self, s: str) -> str:
        """``s`` with every detected value replaced by ``[REDACTED:<detector>]``."""
        if not _MAYBE.search(s) and all(d in _BUILTINS for d in self._detectors):
            return s  # every built-in needs a digit or an "@": most text is let through here
        return self._resolve(s, locate=False)[0]

    def findings(self, s: str) -> list[Finding]:
        """What :meth:`redact_text` masks in ``s``: detector names and offsets, sorted, disjoint."""
        return self._resolve(s, locate=True)[1]

    # -- values --------------------------------------------------------------------------------

    def redact(self, value: Any) -> Any:
        """``value`` with every string in it redacted.

        Dicts (keys kept), lists, tuples (named ones too), sets and frozensets come back as the
        same kind of container; pydantic models and dataclass instances come back as dicts of
        their fields. Numbers, ``None`` and every other object are returned as they are: turning
        an unknown object into ``str()`` would hide its type from whoever reads the result.
        """
        return self._walk(value, set())

    def _walk(self, value: Any, active: set[int]) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, BaseModel):
            return self._walk(value.model_dump(), active)
        is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
        if not is_instance and not isinstance(value, (dict, list, tuple, set, frozenset)):
            return value
        if id(value) in active:
            raise ConfigError(f"cannot redact a {type(value).__name__} that contains itself; "
                              "pass a tree of dicts, lists and values instead.")
        active.add(id(value))
        try:
            if is_instance:
                # The fields one level down, like dataclasses.asdict but without deep-copying
                # every leaf (which fails on locks, clients and other uncopyable values).
                return {f.name: self._walk(getattr(value, f.name), active)
                        for f in dataclasses.fields(value)}
            if isinstance(value, dict):
                return {k: self._walk(v, active) for k, v in value.items()}
            items = [self._walk(v, active) for v in value]
            if isinstance(value, tuple):
                return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
            if isinstance(value, frozenset):
                return frozenset(items)
            if isinstance(value, set):
                return set(items)
            return items
        finally:
            active.discard(id(value))


DEFAULT = Redactor.default()
