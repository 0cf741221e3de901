"""The server's custom HTTP routes (``langgraph.json``: ``"http": {"app": ...}``).

``GET /steward/threads/{thread_id}`` is Steward's view of a thread: its status as Steward
keeps it (``idle``, ``running``, ``interrupted``, ``erased``, or ``stalled``: a run that died
mid-way, which a run with no input continues), what it waits on, whether a run holds it.

``GET /steward/threads/{thread_id}/audit`` streams the thread's audit events as server-sent
events (one ``event: audit`` per event, its JSON as data), from ``?after=<seq>`` on, as they
are written; the caller must be authenticated and may only see its tenant's threads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import steward
from steward.identity import Principal, principal_from_user
from steward.server.runtime import runtime


def _principal(request: Request) -> Principal | None:
    """The authenticated caller, or None (no token, or one that names no tenant)."""
    user = request.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return principal_from_user(user)


def _unauthenticated() -> Response:
    return JSONResponse({"detail": "a token is needed (Authorization: Bearer, or X-Api-Key)"},
                        status_code=401)


async def thread_info(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _unauthenticated()
    rt = await runtime()
    try:
        info = await rt.checkpointer.athread_info(request.path_params["thread_id"], principal)
    except (steward.ThreadAccessDenied, steward.ConfigError):
        info = None
    if info is None:
        return JSONResponse({"detail": "thread not found"}, status_code=404)
    return JSONResponse(info)


async def audit_events(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _unauthenticated()
    thread_id = request.path_params["thread_id"]
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        return JSONResponse({"detail": "after must be an event number"}, status_code=400)
    rt = await runtime()
    try:
        await rt.audit.aevents(thread_id, principal, limit=1)
    except steward.ThreadAccessDenied:
        return JSONResponse({"detail": "thread not found"}, status_code=404)

    async def stream() -> AsyncIterator[str]:
        async for event in rt.audit.asubscribe(thread_id, principal, after=after, poll=0.25):
            yield f"id: {event.seq}\nevent: audit\ndata: {json.dumps(event.to_dict())}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


app = Starlette(routes=[Route("/steward/threads/{thread_id}", thread_info),
                        Route("/steward/threads/{thread_id}/audit", audit_events)])
