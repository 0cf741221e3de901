"""The store's search filters (steward.memory.store): equality and ``$eq``/``$ne`` match
exactly the values they name, as a property. No database (the store end to end:
test_memory.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from steward.memory.store import _matches

PROPS = settings(max_examples=200, deadline=None)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))


@PROPS
@given(st.dictionaries(st.sampled_from("abc"), SCALAR, max_size=3),
       st.dictionaries(st.sampled_from("abc"), SCALAR, max_size=2))
def test_an_equality_filter_matches_exactly_the_equal_values(value: dict[str, Any],
                                                             want: dict[str, Any]) -> None:
    assert _matches(value, want) == all(value.get(k) == v for k, v in want.items())
    assert _matches(value, {k: {"$eq": v} for k, v in want.items()}) == _matches(value, want)
    assert _matches(value, {k: {"$ne": v} for k, v in want.items()}) == all(
        value.get(k) != v for k, v in want.items())
