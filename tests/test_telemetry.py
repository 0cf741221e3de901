"""``steward.telemetry.configure_otlp``: a guarded graph's spans reach an OTLP/HTTP collector (a
local receiver here, standing for the ADOT collector), configured by OpenTelemetry's standard
environment variables or by arguments, through the real SDK and exporter.

Each case runs in a process of its own, as an application would: a process has one tracer
provider, set once, and the audit handler's tracer keeps the first one it found, so a test of
setting it up cannot share a process with other tests' providers.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from steward.errors import ConfigError
from steward.telemetry import _traces_url

# A refund that a manager must approve: alice's run pauses in the guard, bob's vote resumes
# it and the effect runs; under rt.config, so the audit handler makes the spans.
APP = '''
import sys
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

import steward
from steward.telemetry import configure_otlp

POLICY = (\'permit (principal, action, resource);\\n\'
          \'@approval("manager") forbid (principal, action == Action::"pay", resource);\')


class Refund(TypedDict, total=False):
    order_id: str
    receipt: str


@steward.effect
def pay(order_id: str, *, idempotency_key: str) -> str:
    return f"paid {order_id}"


def refund(state: Refund) -> Refund:
    steward.guard("pay", {"order_id": state["order_id"]})
    return {"receipt": pay(state["order_id"])}


{setup}

builder = StateGraph(Refund)
builder.add_node("refund", refund)
builder.add_edge(START, "refund")
builder.add_edge("refund", END)
alice = steward.Principal(id="alice@acme.test", tenant="acme", roles={"support"})
bob = steward.Principal(id="bob@acme.test", tenant="acme", roles={"manager"})
with steward.open("sqlite://:memory:", policy=steward.Policy.from_cedar(POLICY),
                  thread_roles={"manager": "write"}) as rt:
    graph = builder.compile(checkpointer=rt.checkpointer)
    graph.invoke({"order_id": "98765"}, rt.config("T-4321", alice))
    out = graph.invoke(Command(resume={"decision": "approve", "comment": "ok"}),
                       rt.config("T-4321", bob))
    assert out["receipt"] == "paid 98765", out
'''


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: what the exporter POSTs, decoded."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                 request))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with its resource's attributes."""
        out = []
        for _, _, request in self.requests:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in pairs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def _run(setup: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", APP.replace("{setup}", setup)],
        env={**clean, "PYTHONPATH": os.pathsep.join(sys.path), **env},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _check_the_run_spans(spans: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
    """Both runs' spans, their names, the thread and each run's principal; returns the
    resource."""
    by_run: dict[bytes, list[Any]] = {}
    for _, span in spans:
        by_run.setdefault(span.trace_id, []).append(span)
    assert len(by_run) == 2, [s.name for _, s in spans]  # alice's run, then bob's resume
    seen = []
    for trace_spans in by_run.values():
        names = {s.name: s for s in trace_spans}
        root = names["invoke_agent LangGraph"]  # the graph's name
        node = names["node refund"]
        assert node.parent_span_id == root.span_id
        attributes = _attributes(root.attributes)
        assert attributes["gen_ai.operation.name"] == "invoke_agent"
        for span in (root, node):
            got = _attributes(span.attributes)
            assert got["steward.thread_id"] == "T-4321"
            assert got["steward.tenant"] == "acme"
        seen.append(attributes["steward.principal.id"])
        assert root.start_time_unix_nano <= node.start_time_unix_nano <= node.end_time_unix_nano
    assert sorted(seen) == ["alice@acme.test", "bob@acme.test"]
    resources = [resource for resource, _ in spans]
    assert all(r == resources[0] for r in resources)
    return resources[0]


def test_the_environment_configures_the_export(receiver: Receiver) -> None:
    # What an ADOT collector beside the process takes: OTLP/HTTP protobuf at /v1/traces.
    _run("configure_otlp()", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
         OTEL_SERVICE_NAME="refund-agent",
         OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.namespace=acme")
    # Batched: the spans went when the process exited.
    assert receiver.requests, "no spans arrived"
    for path, headers, _ in receiver.requests:
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/x-protobuf"
    resource = _check_the_run_spans(receiver.spans())
    assert resource["service.name"] == "refund-agent"
    assert resource["deployment.environment"] == "test"
    assert resource["service.namespace"] == "acme"
    assert resource["telemetry.sdk.language"] == "python"


def test_the_traces_endpoint_comes_before_the_general_one(receiver: Receiver) -> None:
    _run("configure_otlp()", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
         OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/custom/traces",
         OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme")
    assert {path for path, _, _ in receiver.requests} == {"/custom/traces"}
    assert all(headers["x-tenant"] == "acme" for _, headers, _ in receiver.requests)
    assert _check_the_run_spans(receiver.spans())["service.name"] == "steward"  # by default


SETUP_BY_ARGUMENTS = '''
from steward.errors import ConfigError

exporter = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
sys.modules[exporter] = None  # as if the otel extra were not installed
try:
    configure_otlp()
except ConfigError as exc:
    print("without the exporter:", exc)
else:
    raise AssertionError("configure_otlp worked without the exporter")
del sys.modules[exporter]

provider = configure_otlp("{url}", service_name="payments", headers={"x-steward": "yes"},
                          batch=False)
assert configure_otlp() is provider  # set up already: kept as it is
'''


def test_arguments_configure_the_export_and_a_second_call_keeps_it(
        receiver: Receiver) -> None:
    done = _run(SETUP_BY_ARGUMENTS.replace("{url}", receiver.url),
                OTEL_SERVICE_NAME="not-this-one")
    assert "without the exporter: exporting spans over OTLP needs the OpenTelemetry SDK " \
           "and its OTLP/HTTP exporter: pip install 'langgraph-steward[otel]'." in done.stdout
    # Not batched: a request per span, each sent as it ended.
    assert len(receiver.requests) == len(receiver.spans()) >= 4
    assert {path for path, _, _ in receiver.requests} == {"/v1/traces"}
    assert all(headers["x-steward"] == "yes" for _, headers, _ in receiver.requests)
    assert _check_the_run_spans(receiver.spans())["service.name"] == "payments"


def test_an_endpoint_without_a_path_gets_the_traces_path() -> None:
    assert _traces_url("http://adot:4318") == "http://adot:4318/v1/traces"
    assert _traces_url("http://adot:4318/") == "http://adot:4318/v1/traces"
    assert _traces_url("https://otlp.example/v1/traces") == "https://otlp.example/v1/traces"
    with pytest.raises(ConfigError, match="endpoint= must be an http"):
        _traces_url("localhost:4318")
