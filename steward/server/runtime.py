"""One Steward runtime per server process, opened from the environment.

- ``STEWARD_DB``: the database URL (default the embedded ``steward-server.db``);
- ``STEWARD_THREAD_ROLES``: roles that reach others' threads, ``ROLE=read|write|admin,...``
  (default: the example workflows' roles, ``steward.examples.THREAD_ROLES``);
- ``STEWARD_POLICY``: a Cedar policy file for ``steward.guard`` (default: the example
  workflows' and the refund chat's policies, together: each permits its tenant and forbids
  only its own actions).

The server asks for the checkpointer (``checkpointer``) and for each graph per run
(``refund_graph(config)``, ``access_graph``, ``close_graph``, ``research_graph``, and
``agent_graph``, the refund chat built with LangChain's ``create_agent``); all share the
runtime, so that guards, approvals, the effect ledger and the audit trail work as they do under
``steward.open``. The principal of a run is the authenticated user (``steward.server.auth``).
The same factories serve ``steward worker`` (``steward.workers``), which passes its own
runtime in the config: there they use it instead of opening the server's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig

import steward
import steward.server as shared
from steward.context import RUNTIME_KEY
from steward.examples import THREAD_ROLES, WORKFLOWS
from steward.examples.chat import chat_policy
from steward.identity import parse_thread_roles, principal_from_config


def _policy() -> steward.Policy | list[steward.Policy]:
    path = os.environ.get("STEWARD_POLICY")
    if path:
        return steward.Policy.from_file(path)
    return [*(w.policy() for w in WORKFLOWS.values()), chat_policy()]


def options_from_env() -> dict[str, Any]:
    """``steward.open`` options from the environment (``STEWARD_THREAD_ROLES``,
    ``STEWARD_POLICY``), as every host that serves the example workflows reads them."""
    return {"thread_roles": parse_thread_roles(
                os.environ.get("STEWARD_THREAD_ROLES", THREAD_ROLES),
                source="$STEWARD_THREAD_ROLES"),
            "policy": _policy()}


async def _open() -> steward.Runtime:
    return await steward.aopen(
        os.environ.get("STEWARD_DB", "sqlite:///steward-server.db"), **options_from_env(),
        # The server reads threads with its own configs, after its auth handlers
        # (steward.server.auth) confined the request to the caller's tenant.
        trust_unidentified=True)


async def runtime() -> steward.Runtime:
    """The process's runtime, opened on first use. Kept in ``steward.server``: the server
    loads this file once per ``langgraph.json`` entry, as separate modules, and all of them
    must share one runtime (one saver, one audit log)."""
    return await shared.shared_runtime(_open)


@contextlib.asynccontextmanager
async def checkpointer() -> AsyncIterator[Any]:
    """``langgraph.json``: ``"checkpointer": {"path": "./steward/server/runtime.py:..."}``."""
    rt = await runtime()
    yield rt.checkpointer


async def _graph(name: str, config: RunnableConfig) -> Any:
    """A workflow's graph for one run, with the run's audit handler attached."""
    return await _served(WORKFLOWS[name].build().compile(), config)


async def _served(compiled: Any, config: RunnableConfig) -> Any:
    """A compiled graph bound to the runtime, with the run's audit handler attached. Under
    ``steward worker`` the config is the worker's ``rt.config(...)``, carrying its runtime,
    its audit handler and its lease: the graph is returned as it is, and the worker binds it
    to its runtime's checkpointer (``steward.jobs.graphs``)."""
    if isinstance((config.get("configurable") or {}).get(RUNTIME_KEY), steward.Runtime):
        return compiled
    rt = await runtime()
    # The runtime rides in the config under Steward's key: node-level calls find it there.
    graph = compiled.with_config(configurable={RUNTIME_KEY: rt})
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if thread_id is None:  # the server builds graphs for schemas and Studio too
        return graph
    # The run's audit handler and its lease, as rt.config gives them: a server run holds its
    # thread like any other run (one run per thread across servers, workers and apps; a run
    # the server lost in a crash reads "stalled"), and its principal is whom a worker wakes
    # the thread as when a timer fires.
    return graph.with_config(
        callbacks=rt.config(str(thread_id), principal_from_config(config))["callbacks"])


async def refund_graph(config: RunnableConfig) -> Any:
    """The refund workflow (``langgraph.json``: ``"refund"``)."""
    return await _graph("refund", config)


async def access_graph(config: RunnableConfig) -> Any:
    return await _graph("access", config)


async def close_graph(config: RunnableConfig) -> Any:
    return await _graph("close", config)


async def research_graph(config: RunnableConfig) -> Any:
    return await _graph("research", config)


async def agent_graph(config: RunnableConfig) -> Any:
    """The refund chat (``langgraph.json``: ``"agent"``): ``create_agent`` with
    ``GuardedToolsMiddleware`` and the offline ``RefundChatModel``, for Agent Chat UI; its input
    is ``{"messages": [{"type": "human", "content": "Please refund $120 for order 98765"}]}``.
    Needs LangChain v1 (the ``server`` extra has it)."""
    from steward.examples.chat import build_refund_chat_agent

    return await _served(build_refund_chat_agent(), config)
