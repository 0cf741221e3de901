"""Who takes part in an evaluation, the runtime they share and the graphs they run.

One tenant, ``acme``: Alice asks (support, analyst), and people of each approving role decide;
Carol, an auditor, reads the scorecard; Mallory, of the tenant ``globex``, holds every
approving role and tries anyway. The runtime carries the example workflows' policies and the
refund chat's (which judges the injection team's refunds), as the LangGraph server does; the
agent workflows' tool calls time out after ``tool_timeout`` seconds, so that an injected
timeout costs about that much.
"""

from __future__ import annotations

from typing import Any

import steward
from steward.evaluation.planner import build_injection_graph
from steward.examples import WORKFLOWS
from steward.examples.chat import chat_policy
from steward.identity import Principal
from steward.nodes.tools import Retry

__all__ = ["CAST", "EVAL_WORKFLOWS", "GRAPHS", "TENANT", "THREAD_ROLES", "build_graph",
           "open_runtime"]

TENANT = "acme"
EVAL_WORKFLOWS = ("refund", "access", "close", "research")  # what --workflows names
GRAPHS = (*EVAL_WORKFLOWS, "injection")  # what the threads run (injection: research's cases)
THREAD_ROLES = {"auditor": "read"}  # approvers need no grant: a request reaches them


def _p(pid: str, *roles: str, tenant: str = TENANT) -> Principal:
    return Principal(id=pid, tenant=tenant, roles=frozenset(roles))


CAST: dict[str, Principal] = {
    "alice": _p("alice@acme.test", "support", "analyst"),
    "bob": _p("bob@acme.test", "manager"),
    "sam": _p("sam@acme.test", "security"),
    "sue": _p("sue@acme.test", "security"),
    "cleo": _p("cleo@acme.test", "controller"),
    "carl": _p("carl@acme.test", "controller"),
    "fran": _p("fran@acme.test", "cfo"),
    "olive": _p("olive@acme.test", "compliance-officer"),
    "cora": _p("cora@acme.test", "analyst", "compliance-officer"),
    "carol": _p("carol@acme.test", "auditor"),
    "mallory": _p("mallory@globex.test", "manager", "security", "controller", "cfo",
                  "compliance-officer", tenant="globex"),
}


def open_runtime(db: str) -> steward.Runtime:
    """The evaluation's runtime on ``db`` (the caller closes it)."""
    return steward.open(db, thread_roles=THREAD_ROLES,
                        policy=[*(w.policy() for w in WORKFLOWS.values()), chat_policy()])


def build_graph(rt: steward.Runtime, name: str, tool_timeout: float) -> Any:
    """A graph of ``GRAPHS`` compiled on the runtime, named so that its runs say which."""
    retry = Retry(initial=0.05, max_delay=0.5)
    if name == "injection":
        builder: Any = build_injection_graph(timeout=tool_timeout, retry=retry)
    elif WORKFLOWS[name].plans:
        builder = WORKFLOWS[name].build(timeout=tool_timeout, retry=retry)
    else:
        builder = WORKFLOWS[name].build()
    return builder.compile(checkpointer=rt.checkpointer, store=rt.store, name=name)
