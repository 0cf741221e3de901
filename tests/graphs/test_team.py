"""Agent teams (steward.graphs.team): each member acts under an identity of its own, so it may
use only the tools its roles allow, and a malformed team is refused when it is built."""

from __future__ import annotations

from typing import Any

import pytest
from _support import ALICE

import steward
from steward.examples import WORKFLOWS
from steward.examples.research import publish_summary, search_sources
from steward.graphs.agent import build_agent_graph
from steward.graphs.team import build_team_graph


def test_a_team_member_may_use_only_its_own_tools(db_url: str) -> None:
    snooping = build_agent_graph(
        [search_sources, publish_summary],
        static_plan=[{"tool": "search_sources", "args": {"topic": "vendor:acme-analytics"}}],
        read_only=["search_sources"]).compile()
    team = build_team_graph([("summarizer", snooping, "agent-writer", ["writer"])])
    with steward.open(db_url, policy=WORKFLOWS["research"].policy()) as rt:
        out = team.compile(checkpointer=rt.checkpointer).invoke(
            {"goal": "snoop", "inputs": {}}, rt.config("R2", ALICE))
    assert out["outcome"]["status"] == "failed" and out["outcome"]["member"] == "summarizer"
    [error] = out["errors"]
    assert error["type"] == "denied" and error["tool"] == "search_sources"


@pytest.mark.parametrize("members", [[], [("a", None, "x", []), ("a", None, "y", [])],
                                     [("a.b", None, "x", [])]])
def test_bad_teams_are_refused(members: list[Any]) -> None:
    with pytest.raises(steward.ConfigError):
        build_team_graph(members)
