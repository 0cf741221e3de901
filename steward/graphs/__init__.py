"""The library's prebuilt graphs: the agent loop (``build_agent_graph``) and agent teams
(``build_team_graph``, ``member_node``, over ``TeamContext``). The example workflows built on
them live in ``steward.examples``."""

from steward.graphs.agent import build_agent_graph
from steward.graphs.team import TeamContext, build_team_graph, member_node

__all__ = ["TeamContext", "build_agent_graph", "build_team_graph", "member_node"]
