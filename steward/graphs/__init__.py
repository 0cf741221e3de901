"""Prebuilt graphs: the agent loop (``build_agent_graph``) and the example workflows."""

from steward.graphs.agent import build_agent_graph

__all__ = ["build_agent_graph"]
