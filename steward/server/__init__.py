"""Steward under the LangGraph server (``langgraph dev``, LangGraph Studio, Agent Server).

``langgraph.json`` at the repository root points at these modules:

- ``runtime``: the checkpointer factory (Steward's saver on ``$STEWARD_DB``) and the graph
  factories, which attach the audit handler to each run;
- ``auth``: bearer tokens (JWT, verified with PyJWT) mapped to a Principal, and the
  ``@auth.on`` handler that confines every thread, run and search to the caller's tenant;
- ``app``: the server's custom HTTP routes: a thread's audit events as server-sent events.

The server installs these from the ``server`` extra: ``pip install 'langgraph-steward[server]'``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.runtime import Runtime

_RUNTIME: Runtime | None = None
_LOCK: asyncio.Lock | None = None


async def shared_runtime(opener: Callable[[], Awaitable[Runtime]]) -> Runtime:
    """The one runtime of this server process (see ``runtime.runtime``)."""
    global _RUNTIME, _LOCK
    if _LOCK is None:
        _LOCK = asyncio.Lock()
    async with _LOCK:
        if _RUNTIME is None:
            _RUNTIME = await opener()
        return _RUNTIME
