"""Memory spaces (steward.memory.space): which namespaces name a space, as a property over
generated label lists. No database."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from steward import ConfigError
from steward.memory.space import SCOPES, space_of

PROPS = settings(max_examples=200, deadline=None)
LABEL = st.text(alphabet=string.ascii_letters + string.digits + "-_@:", min_size=1, max_size=12)


@PROPS
@given(st.lists(LABEL, min_size=0, max_size=5))
def test_a_namespace_is_a_space_exactly_when_it_is_tenant_then_scope(labels: list[str]) -> None:
    ns = tuple(labels)
    well_formed = (len(ns) >= 2 and ns[1].partition(":")[0] in SCOPES
                   and ns[1].partition(":")[1] == ":" and bool(ns[1].partition(":")[2]))
    try:
        space = space_of(ns)
    except ConfigError:
        assert not well_formed
    else:
        assert well_formed and (space.tenant, space.scope) == ns[:2]
        assert f"{space.kind}:{space.name}" == ns[1]
