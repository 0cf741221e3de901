"""A research team: researcher, compliance checker and summarizer sharing one working context.

"Assess vendor Acme Analytics" runs as a team (``steward.graphs.team``) of three agent graphs,
each under its own service identity, over a small local library (the SQLite file
``$STEWARD_DEMO_RECORDS``, default ``steward-demo-records.db``):

- the **researcher** (``agent-researcher``, role ``researcher``) searches the library;
- the **compliance checker** (``agent-compliance``, role ``compliance``) reviews what was found:
  restricted sources and personal data are flagged, and the review is filed (an effect);
- the **summarizer** (``agent-writer``, role ``writer``) publishes a report of the cleared
  findings, redacted (an effect).

The policy (``RESEARCH_POLICY``) lets each member use only its own tools (each tool is forbidden
to every other role, so the policy also composes with the other examples' under one server),
and a report that the review flagged anything is published only with a
``compliance-officer``'s approval -- never the requester's own, though the summarizer asked on
their behalf.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg, tool
from langgraph.graph import StateGraph

from steward.examples import faults
from steward.examples.records import records_path, system_of_record
from steward.graphs import TeamContext, build_agent_graph, build_team_graph
from steward.guardrails.policy import Policy
from steward.guardrails.redact import Redactor
from steward.nodes.tools import Retry
from steward.state import WorkingContext

__all__ = ["RESEARCH_POLICY", "add_source", "build_research_graph", "reports", "research_policy",
           "reviews"]

RESEARCH_POLICY = """
@id("same-tenant")
permit (principal, action, resource) when { principal.tenant == context.thread.tenant };

@id("only-researchers-search") @reason("only the researcher searches the library")
forbid (principal, action == Action::"search_sources", resource)
unless { principal in Role::"researcher" };

@id("only-compliance-reviews") @reason("only the compliance checker reviews findings")
forbid (principal, action == Action::"review_findings", resource)
unless { principal in Role::"compliance" };

@id("only-writers-publish") @reason("only the summarizer publishes reports")
forbid (principal, action == Action::"publish_summary", resource)
unless { principal in Role::"writer" };

@id("flagged-needs-officer") @approval("compliance-officer")
@reason("a report whose review flagged findings needs a compliance officer's approval")
forbid (principal, action == Action::"publish_summary", resource)
when { context.args.flags > 0 };
"""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sources (source_id TEXT PRIMARY KEY, topic TEXT, title TEXT, "
    "body TEXT, restricted INTEGER)",
    "CREATE TABLE IF NOT EXISTS reviews (review_id TEXT PRIMARY KEY, topic TEXT, flags TEXT, "
    "reviewer TEXT, on_behalf_of TEXT)",
    "CREATE TABLE IF NOT EXISTS reports (report_id TEXT PRIMARY KEY, topic TEXT, body TEXT, "
    "author TEXT, on_behalf_of TEXT)",
)
_TOPIC = "vendor:acme-analytics"
_SOURCES = (
    ("S1", _TOPIC, "SOC 2 Type II report, 2026",
     "Acme Analytics holds a SOC 2 Type II report covering security and availability.", 0),
    ("S2", _TOPIC, "Data residency statement",
     "Customer data is stored in EU data centres (Frankfurt), with backups in Dublin.", 0),
    ("S3", _TOPIC, "Support escalation thread",
     "For contract questions write to their CTO at jane.roe@acme-analytics.example.", 0),
    ("S4", _TOPIC, "Internal pricing memo", "We negotiated a 38% discount for three years.", 1),
)
_REDACTOR = Redactor()


def _library() -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return system_of_record(records_path(), _SCHEMA,
                            {"INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?, ?)": _SOURCES})


def research_policy() -> Policy:
    return Policy.from_cedar(RESEARCH_POLICY)


@tool
def search_sources(topic: str) -> dict[str, Any]:
    """Search the library for what is known about a topic (read-only)."""
    with faults.call("library.search"), _library() as conn:
        rows = conn.execute("SELECT source_id, title, body, restricted FROM sources "
                            "WHERE topic = ? ORDER BY source_id", (topic,)).fetchall()
    return {"topic": topic, "findings": [{"source": r[0], "title": r[1], "text": r[2],
                                          "restricted": bool(r[3])} for r in rows]}


@tool
def review_findings(topic: str, findings: list[dict[str, Any]],
                    idempotency_key: Annotated[str, InjectedToolArg],
                    principal: Annotated[dict[str, Any], InjectedToolArg]) -> dict[str, Any]:
    """Review findings for restricted sources and personal data, and file the review."""
    flags, cleared = [], []
    for finding in findings:
        text = str(finding.get("text", ""))
        if finding.get("restricted"):
            flags.append({"source": finding.get("source"), "why": "restricted source"})
        elif _REDACTOR.redact_text(text) != text:
            flags.append({"source": finding.get("source"), "why": "personal data"})
            cleared.append({**finding, "text": _REDACTOR.redact_text(text)})
        else:
            cleared.append(finding)
    review_id = "R-" + idempotency_key[-10:].upper()
    with faults.call("library.review"), _library() as conn:
        conn.execute("INSERT OR IGNORE INTO reviews VALUES (?, ?, ?, ?, ?)",
                     (review_id, topic, json.dumps(flags), principal["id"],
                      principal.get("on_behalf_of")))
    return {"review_id": review_id, "flags": flags, "cleared": cleared}


@tool
def publish_summary(topic: str, findings: list[str], flags: int,
                    idempotency_key: Annotated[str, InjectedToolArg],
                    principal: Annotated[dict[str, Any], InjectedToolArg]) -> dict[str, Any]:
    """Publish the report of a topic from cleared findings."""
    report_id = "REP-" + idempotency_key[-10:].upper()
    body = "\n".join(f"- {f}" for f in findings)
    with faults.call("library.publish"), _library() as conn:
        conn.execute("INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?)",
                     (report_id, topic, body, principal["id"], principal.get("on_behalf_of")))
    return {"report_id": report_id, "topic": topic, "findings": len(findings), "flags": flags}


def _team(state: WorkingContext, member: str, tool_name: str) -> Any:
    return (((state.get("inputs") or {}).get("team") or {}).get(member) or {}).get(tool_name)


def _research_plan(state: WorkingContext) -> list[dict[str, Any]]:
    return [{"tool": "search_sources", "args": {"topic": "$topic"},
             "reason": "what the library knows"}]


def _review_plan(state: WorkingContext) -> list[dict[str, Any]]:
    found = _team(state, "researcher", "search_sources") or {}
    return [{"tool": "review_findings",
             "args": {"topic": "$topic", "findings": found.get("findings") or []},
             "reason": "nothing restricted or personal goes out unflagged"}]


def _summary_plan(state: WorkingContext) -> list[dict[str, Any]]:
    review = _team(state, "compliance", "review_findings") or {}
    return [{"tool": "publish_summary",
             "args": {"topic": "$topic",
                      "findings": [f"{c.get('title')}: {c.get('text')}"
                                   for c in review.get("cleared") or []],
                      "flags": len(review.get("flags") or [])},
             "reason": "the report, from cleared findings only"}]


def build_research_graph(model: Any = None, *, timeout: float = 30.0,
                         retry: Retry | None = None) -> StateGraph[TeamContext]:
    """Three members, each an agent graph with its own tools and identity; the static plans
    offline, or ``model`` planning for each member from the goal and the team's results;
    ``timeout`` and ``retry``: each tool call's (see ``build_agent_graph``)."""
    def member(tools: list[Any], plan: Any, read_only: tuple[str, ...] = ()) -> Any:
        return build_agent_graph(tools, model=model,
                                 static_plan=None if model is not None else plan,
                                 read_only=read_only, timeout=timeout, retry=retry).compile()

    return build_team_graph([
        ("researcher", member([search_sources], _research_plan, ("search_sources",)),
         "agent-researcher", ["researcher"]),
        ("compliance", member([review_findings], _review_plan), "agent-compliance",
         ["compliance"]),
        ("summarizer", member([publish_summary], _summary_plan), "agent-writer", ["writer"]),
    ])


def add_source(source_id: str, topic: str, title: str, body: str, *,
               restricted: bool = False) -> None:
    """Put a source in the library."""
    with _library() as conn:
        conn.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
                     (source_id, topic, title, body, int(restricted)))


def reviews(topic: str) -> list[dict[str, Any]]:
    with _library() as conn:
        rows = conn.execute("SELECT review_id, flags, reviewer, on_behalf_of FROM reviews "
                            "WHERE topic = ?", (topic,)).fetchall()
    return [{"review_id": r[0], "flags": json.loads(r[1]), "reviewer": r[2],
             "on_behalf_of": r[3]} for r in rows]


def reports(topic: str) -> list[dict[str, Any]]:
    with _library() as conn:
        rows = conn.execute("SELECT report_id, body, author, on_behalf_of FROM reports "
                            "WHERE topic = ?", (topic,)).fetchall()
    return [{"report_id": r[0], "body": r[1], "author": r[2], "on_behalf_of": r[3]}
            for r in rows]
