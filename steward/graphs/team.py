"""Agent teams: members that share one working context, each acting under its own identity.

``member_node(name, graph, id=..., roles=...)`` makes an agent graph (``build_agent_graph``,
compiled without a checkpointer) a node of a parent graph over ``TeamContext``. The member runs
as a subgraph -- checkpointed in its own namespace of the thread, so that a member paused for an
approval resumes where it stopped -- and as a service principal of the run's tenant:

- the policy judges the member (``principal in Role::"researcher"``), so each member may use
  only its own tools, and a model planning for it is only offered those;
- its tools receive its identity, with ``on_behalf_of`` the run's principal;
- its guard, approval and effect events name it, and the person it acts for;
- approvals it asks for are asked on the person's behalf: that person cannot approve them.

The members share the goal, the inputs, the conversation and each other's results
(``state["inputs"]["team"][member]``: the results of its done steps, by tool); each member
plans its own steps, which join the shared plan as ``"<member>.<step id>"``, and its outcome is
kept under ``state["members"][member]``. A member that fails ends the team's run as failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph

from steward.errors import ConfigError
from steward.identity import AGENT_KEY, Principal, principal_from_config
from steward.state import WorkingContext

__all__ = ["TeamContext", "build_team_graph", "member_node"]


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class TeamContext(WorkingContext, total=False):
    members: Annotated[dict[str, dict[str, Any]], _merge]  # member -> agent, outcome, results


def _results(steps: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {str(s.get("tool")): s.get("result") for s in steps if s.get("status") == "done"}


def member_node(name: str, graph: Any, *, id: str, roles: Iterable[str]) -> RunnableLambda[
        TeamContext, dict[str, Any]]:
    """A node that runs ``graph`` (a compiled agent graph) as team member ``name``, under the
    service principal ``id`` with ``roles`` in the run's tenant (see the module docstring)."""
    held = frozenset(roles)
    if not name or "." in name:
        raise ConfigError(f"member name {name!r}: use a non-empty name without dots.")
    Principal(id=id, tenant="-", roles=held, kind="service")  # checks id and roles now

    def prepare(state: TeamContext, config: RunnableConfig) -> tuple[dict[str, Any],
                                                                     RunnableConfig, str]:
        principal = principal_from_config(config)
        if principal is None:
            raise ConfigError(f"team member {name!r} acts on someone's behalf: run the team "
                              "with rt.config(thread_id, principal).")
        agent = Principal(id=id, tenant=principal.tenant, roles=held, kind="service")
        team = {member: info.get("results") for member, info in
                (state.get("members") or {}).items()}
        goal = str(state.get("goal") or "")
        if team:  # what a model planning for this member reads
            goal += "\n\nResults of the team so far (JSON): " + json.dumps(team, default=str)
        view: dict[str, Any] = {"goal": goal,
                                "inputs": {**(state.get("inputs") or {}), "team": team},
                                "messages": list(state.get("messages") or [])}
        configurable = {**(config.get("configurable") or {}), AGENT_KEY: agent.to_dict()}
        return view, {**config, "configurable": configurable}, agent.id

    def joined(out: dict[str, Any], agent: str) -> dict[str, Any]:
        steps = [{**s, "id": f"{name}.{s.get('id')}"} for s in out.get("plan") or []]
        return {"plan": steps, "messages": out.get("messages") or [],
                "approvals": out.get("approvals") or [], "errors": out.get("errors") or [],
                "members": {name: {"agent": agent, "outcome": out.get("outcome") or {},
                                   "results": _results(out.get("plan") or [])}}}

    def run(state: TeamContext, config: RunnableConfig) -> dict[str, Any]:
        view, inner, agent = prepare(state, config)
        return joined(graph.invoke(view, inner), agent)

    async def arun(state: TeamContext, config: RunnableConfig) -> dict[str, Any]:
        view, inner, agent = prepare(state, config)
        return joined(await graph.ainvoke(view, inner), agent)

    return RunnableLambda(run, afunc=arun, name=name)


def _next(names: Sequence[str], at: int) -> Any:
    """After member ``at``: the next member, or the end once one failed or all are done."""
    def route(state: TeamContext) -> str:
        outcome = ((state.get("members") or {}).get(names[at]) or {}).get("outcome") or {}
        if outcome.get("status") != "done" or at + 1 == len(names):
            return "finish"
        return names[at + 1]
    return route


def _finish(state: TeamContext) -> dict[str, Any]:
    members = state.get("members") or {}
    for member, info in members.items():
        outcome = info.get("outcome") or {}
        if outcome.get("status") != "done":
            return {"outcome": {"status": "failed", "member": member,
                                "reason": f"{member}: {outcome.get('reason') or 'not done'}"}}
    return {"outcome": {"status": "done", "members": sorted(members)}}


def build_team_graph(members: Sequence[tuple[str, Any, str, Iterable[str]]]
                     ) -> StateGraph[TeamContext]:
    """Members ``(name, compiled agent graph, service id, roles)`` run one after the other
    over one ``TeamContext``; not compiled, so that more nodes and edges can be added."""
    if not members:
        raise ConfigError("a team needs at least one member.")
    names = [m[0] for m in members]
    if len(set(names)) != len(names):
        raise ConfigError(f"team member names must differ, got {names}.")
    builder = StateGraph(TeamContext)
    for name, graph, agent_id, roles in members:
        builder.add_node(name, member_node(name, graph, id=agent_id, roles=roles))
    builder.add_node("finish", _finish)
    builder.add_edge(START, names[0])
    for at, name in enumerate(names):
        targets = ["finish"] + ([names[at + 1]] if at + 1 < len(names) else [])
        builder.add_conditional_edges(name, _next(names, at), targets)
    builder.add_edge("finish", END)
    return builder
