"""Serve a Steward graph on Amazon Bedrock AgentCore Runtime.

``agentcore_app(graph, url=...)`` is a ``bedrock_agentcore`` ``BedrockAgentCoreApp`` (the
contract AgentCore Runtime runs: ``POST /invocations`` and ``GET /ping`` on port 8080) whose
entrypoint runs the graph on a Steward runtime:

- the ``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`` header names the thread (one session,
  one thread, across the session's invocations and microVMs: the state is in the database);
- the principal comes from the bearer token in ``Authorization`` (the JWT an AgentCore inbound
  authorizer checked and passes on when the runtime's request header allowlist names
  ``Authorization``), verified again here as ``steward.tokens`` says; no token, no run (401).
  The workload access token AgentCore also sends is for calling AgentCore Identity on the
  user's behalf; it is not verifiable here and never names the principal;
- the payload is the graph's input, ``{"resume": value}`` answering what the thread waits on
  (a vote in any format Steward's approvals accept, checked before the run as the LangGraph
  server checks it: a vote the node would refuse is 403/422, and the thread keeps waiting), or
  ``null``: go on from the last checkpoint (a run that died half-way, "stalled"; a finished
  session answers with its values), as ``Runtime.resume`` does: a session waiting on an
  interrupt is refused (400, ConfigError: send ``{"resume": ...}``), and so is one with no
  checkpoint;
- with ``Accept: text/event-stream`` the response streams the run's events (``updates``, an
  ``interrupt`` carrying the approval request, and ``end``; or ``error``, ``{"error",
  "message", "status"}``, when a step is refused, e.g. PolicyDenied); otherwise it is one JSON
  object: ``{"session_id", "status": "done" | "interrupted", "values", "interrupts"}``;
- a refusal is ``{"error": <the steward.errors type>, "message"}`` with the status
  ``steward.server.status`` gives it, as the LangGraph server answers it (another tenant's
  session is 404: no session of the caller's);
- ``/ping`` says ``HealthyBusy`` while a run of this process holds a thread's lease, so
  AgentCore does not stop the session's microVM under it.

``python -m steward.aws.agentcore`` serves the example workflow ``$STEWARD_GRAPH`` (``refund``;
or ``module:attribute`` naming a ``StateGraph``) on ``$STEWARD_DB`` (``STEWARD_DB_IAM_AUTH=1``,
``true``, ``yes`` or ``on``: an IAM token per connection; ``0``, ``false``, ``no``, ``off`` or
unset: none) with the LangGraph server's ``STEWARD_POLICY`` /
``STEWARD_THREAD_ROLES``, ``STEWARD_ENCRYPTION_KEY`` and the token settings of
``steward.tokens``, on ``0.0.0.0:$PORT`` (8080): the container ``deploy/aws/`` builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import queue
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from langchain_core.runnables import RunnableBinding
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command

import steward
from steward.errors import ConfigError, StewardError, TokenInvalid
from steward.identity import Principal
from steward.jobs.graphs import bind
from steward.server.status import http_message, http_status
from steward.storage.codec import dump_json
from steward.storage.url import parse_url
from steward.tokens import bearer_token, verify_token

if TYPE_CHECKING:
    from bedrock_agentcore.runtime import BedrockAgentCoreApp, RequestContext
    from starlette.applications import Starlette
    from starlette.responses import Response

__all__ = ["agentcore_app", "main"]

_INSTALL = "install the aws extra: pip install 'langgraph-steward[aws]'"


def _jsonable(value: Any) -> Any:
    """What a state value looks like as JSON (messages and models as their dicts, interrupts
    as ``{"value", "id"}``): as Steward stores metadata."""
    return orjson.loads(dump_json(value))


class _Served:
    """The graph and the runtime one app serves."""

    def __init__(self, graph: Any, runtime: steward.Runtime | None, url: str | None,
                 options: dict[str, Any]) -> None:
        self.owned = runtime is None
        self.rt = runtime if runtime is not None else steward.open(
            url or os.environ.get("STEWARD_DB", "sqlite:///steward-agentcore.db"), **options)
        try:
            self.graph = self._bound(graph)
        except BaseException:
            self.close()
            raise

    def _bound(self, graph: Any) -> Any:
        """The graph on the runtime's checkpointer and store (``steward.jobs.graphs.bind``, as
        the worker runs one), so that its nodes' memory (the injected store) is Steward's."""
        if self.rt.is_async:
            raise ConfigError("agentcore_app takes a runtime from steward.open (sync): the "
                              "app runs each invocation on a thread of its own.")
        compiled = graph.bound if isinstance(graph, RunnableBinding) else graph
        if not isinstance(compiled, (StateGraph, Pregel)):
            raise ConfigError(f"agentcore_app serves a StateGraph or a compiled graph, got "
                              f"{type(graph).__name__}.")
        if isinstance(compiled, Pregel) and compiled.checkpointer is not None \
                and compiled.checkpointer is not self.rt.checkpointer:
            raise ConfigError("the graph is compiled with another checkpointer: compile it "
                              "with the runtime's (builder.compile(checkpointer=rt.checkpointer))"
                              ", or pass the StateGraph and let agentcore_app compile it.")
        return bind(graph, self.rt.checkpointer, self.rt.store, "agentcore")

    def close(self) -> None:
        if self.owned:
            self.rt.close()


def _refusal(status: int, error: str, message: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error, "message": message}, status_code=status)


def _refused(exc: StewardError) -> Response:
    return _refusal(http_status(exc), type(exc).__name__, http_message(exc))


def _principal(context: RequestContext) -> Principal:
    headers = {k.lower(): v for k, v in (context.request_headers or {}).items()}
    request = context.request
    if request is not None:  # the SDK forwards only some headers; the request has them all
        headers = {k.lower(): v for k, v in request.headers.items()} | headers
    return verify_token(bearer_token(headers.get("authorization"), headers.get("x-api-key")))


def _streams(context: RequestContext) -> bool:
    request = context.request
    accept = request.headers.get("accept", "") if request is not None else ""
    return "text/event-stream" in accept


def _driven(stream: Callable[[], AsyncIterator[Any]]) -> Iterator[Any]:
    """An async stream, run to its end on an event loop of its own thread and handed over item
    by item: the graph's nodes may be async (only ``astream`` runs those; sync nodes run in its
    executor), the SDK iterates a response on threads of its choosing, and a run goes on to
    its end even if the caller stops listening (else it would stop half-way: stalled)."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()

    async def produce() -> None:
        try:
            async for item in stream():
                items.put(("item", item))
        except BaseException as exc:  # handed to the reader, which raises it
            items.put(("error", exc))
        else:
            items.put(("done", None))

    threading.Thread(target=asyncio.run, args=(produce(),), daemon=True,
                     name="steward-agentcore-run").start()
    while True:
        kind, value = items.get()
        if kind == "error":
            raise value
        if kind == "done":
            return
        yield value


class _Invocation:
    """One ``POST /invocations``: the checks, the run's first step, then the rest."""

    def __init__(self, served: _Served, payload: Any, context: RequestContext,
                 principal: Principal) -> None:
        self.served = served
        self.rt = served.rt
        if not context.session_id:
            raise ConfigError("the request names no session: send the "
                              "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id header (AgentCore "
                              "sends it; invoke_agent_runtime(runtimeSessionId=...)).")
        self.thread_id = context.session_id
        self.principal = principal
        if payload is not None and not isinstance(payload, dict):
            raise ConfigError(f"the payload must be a JSON object (the graph's input, or "
                              f"{{\"resume\": ...}}) or null (go on from the last "
                              f"checkpoint), got {type(payload).__name__}.")
        self.input: Any = payload
        if payload is not None and "resume" in payload:
            if len(payload) != 1:
                raise ConfigError("a resume payload is {\"resume\": value} alone; send the "
                                  "graph's input without a 'resume' key.")
            self.rt.approvals.check_resume(self.thread_id, self.principal, payload["resume"])
            self.input = Command(resume=payload["resume"])
        if payload is None:
            self.rt.check_resumable(self.thread_id, self.principal,
                                    start_with="the graph's input as the payload",
                                    resume_with='{"resume": value} as the payload')
        self.config = self.rt.config(self.thread_id, self.principal)
        self.values: Any = None
        self.interrupts: list[Any] = []

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The run's events; the run's last values and its interrupts are kept for ``end``
        (read from the stream: an approver may no longer read the thread once it went on)."""
        for mode, chunk in _driven(lambda: self.served.graph.astream(
                self.input, self.config, stream_mode=["updates", "values"])):
            if mode == "values":
                self.values = chunk
            elif isinstance(chunk, Mapping) and "__interrupt__" in chunk:
                self.interrupts += list(chunk["__interrupt__"])
                yield {"event": "interrupt", "data": _jsonable(list(chunk["__interrupt__"]))}
            else:
                yield {"event": "updates", "data": _jsonable(chunk)}

    def end(self) -> dict[str, Any]:
        return {"session_id": self.thread_id,
                "status": "interrupted" if self.interrupts else "done",
                "values": _jsonable(self.values), "interrupts": _jsonable(self.interrupts)}


def _events(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]],
            run: _Invocation) -> Iterator[dict[str, Any]]:
    """The stream's events; a step refused after the response began (its status is sent) is
    an ``error`` event in its place, and the stream ends there."""
    if first is not None:
        yield first
    try:
        yield from rest
    except StewardError as exc:
        yield {"event": "error", "data": {"error": type(exc).__name__,
                                          "message": http_message(exc),
                                          "status": http_status(exc)}}
        return
    yield {"event": "end", "data": run.end()}


def agentcore_app(graph: Any, *, url: str | None = None, runtime: steward.Runtime | None = None,
                  **options: Any) -> BedrockAgentCoreApp:
    """An AgentCore Runtime app serving ``graph`` (a ``StateGraph``, or a graph compiled with
    the runtime's checkpointer or none) on a Steward runtime: ``runtime`` (from
    ``steward.open``, left open) or one opened on ``url`` (default ``$STEWARD_DB``) with
    ``options`` (``policy=``, ``thread_roles=``, ...) and closed with the app. See the module
    docstring for the protocol; ``app.run(port=8080)`` serves it."""
    try:
        with warnings.catch_warnings():  # the SDK's models use pydantic's deprecated Config
            warnings.simplefilter("ignore", DeprecationWarning)
            from bedrock_agentcore.runtime import BedrockAgentCoreApp, PingStatus
    except ImportError as exc:
        raise ConfigError(f"serving on AgentCore needs the bedrock-agentcore SDK: "
                          f"{_INSTALL}.") from exc
    served = _Served(graph, runtime, url, options)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            served.close()

    app = BedrockAgentCoreApp(lifespan=lifespan)

    def invoke(payload: Any, context: RequestContext) -> Any:
        """Sync on purpose: the SDK runs it, and iterates what it returns, on a thread."""
        try:
            principal = _principal(context)
        except TokenInvalid as exc:
            return _refusal(401, type(exc).__name__, str(exc))
        except ConfigError as exc:  # this deployment's settings, not the caller's request
            return _refusal(500, type(exc).__name__, str(exc))
        try:
            run = _Invocation(served, payload, context, principal)
            chunks = run.chunks()
            first = next(chunks, None)  # takes the lease: a busy or foreign thread fails here
        except StewardError as exc:
            return _refused(exc)
        if _streams(context):
            return _events(first, chunks, run)
        try:
            for _ in chunks:
                pass
        except StewardError as exc:  # a later step refused (PolicyDenied, ...)
            return _refused(exc)
        return run.end()

    app.entrypoint(invoke)

    @app.ping
    def ping() -> PingStatus:
        return PingStatus.HEALTHY_BUSY if served.rt.checkpointer.leased else PingStatus.HEALTHY

    return app


def _graph_from_env() -> Any:
    name = os.environ.get("STEWARD_GRAPH", "refund")
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"STEWARD_GRAPH={name!r} names nothing importable: {exc}. Use "
                              "module:attribute (a StateGraph) or an example's name.") from exc
    from steward.examples import WORKFLOWS

    if name not in WORKFLOWS or WORKFLOWS[name].plans:
        fixed = sorted(n for n, w in WORKFLOWS.items() if not w.plans)
        raise ConfigError(f"STEWARD_GRAPH={name!r} is no example workflow: use one of "
                          f"{', '.join(fixed)}, or module:attribute naming a StateGraph.")
    return WORKFLOWS[name].build()


_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")


def _iam_auth() -> bool:
    value = os.environ.get("STEWARD_DB_IAM_AUTH", "").strip().lower()
    if value not in _ON + _OFF:
        raise ConfigError(f"STEWARD_DB_IAM_AUTH={value!r} is neither on ({', '.join(_ON)}) "
                          f"nor off ({', '.join(repr(v) for v in _OFF)}): set one of these.")
    return value in _ON


def _db_from_env() -> tuple[str, dict[str, Any]]:
    """``$STEWARD_DB``, and with ``STEWARD_DB_IAM_AUTH=1`` a fresh IAM token as the password of
    each new connection (signed for the URL's host, port and user: see ``steward.aws.rds``)."""
    url = os.environ.get("STEWARD_DB", "sqlite:///steward-agentcore.db")
    if not _iam_auth():
        return url, {}
    from urllib.parse import urlsplit

    from steward.aws.rds import rds_iam_password

    db = parse_url(url)
    parts = urlsplit(db.target)
    if db.backend != "postgres" or not parts.hostname or not parts.username \
            or parts.password:
        raise ConfigError("STEWARD_DB_IAM_AUTH=1 needs STEWARD_DB=postgresql://USER@HOST:PORT/"
                          "DB?sslmode=verify-full&sslrootcert=... naming the database user, "
                          "without a password (the IAM token is the password).")
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"STEWARD_DB={db.masked!r} names no valid port ({exc}): use "
                          "postgresql://USER@HOST:5432/DB.") from exc
    return url, {"password": rds_iam_password(parts.hostname, port, parts.username)}


def _port() -> int:
    value = os.environ.get("PORT", "8080")
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"PORT={value!r} is no TCP port: set a number from 0 to 65535 "
                          "(AgentCore Runtime calls the container on 8080).")
    return port


def main() -> None:
    """``python -m steward.aws.agentcore``: the container's command (see the module). Spans go
    over OTLP when ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set (and a provider set up
    already, as ADOT's auto-instrumentation does, is kept)."""
    from steward.server.runtime import options_from_env

    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") \
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from steward.telemetry import configure_otlp

        configure_otlp()
    url, options = _db_from_env()
    port = _port()
    app = agentcore_app(_graph_from_env(), url=url, **options_from_env(), **options)
    app.run(port=port, host=os.environ.get("HOST", "0.0.0.0"))


if __name__ == "__main__":
    main()
