"""Steward's spans sent over OTLP/HTTP: to the AWS Distro for OpenTelemetry (ADOT) collector or
the CloudWatch agent, which pass them on to CloudWatch (X-Ray traces, Transaction Search,
Application Signals), or to any other OpenTelemetry collector.

The audit handler (``steward.audit.handler``) makes spans with ``opentelemetry-api`` alone and
hands them to whatever tracer provider the process has. :func:`configure_otlp` is the one call
that gives it one exporting over OTLP/HTTP, configured by OpenTelemetry's standard environment
variables (read by the SDK and its exporter, not here): ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``, where a collector beside
the process listens), ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*`` (batching) and
``OTEL_TRACES_SAMPLER``.

A process whose provider is already set up (by the application, or by ``opentelemetry-instrument``
with ADOT's distro, as under AgentCore Runtime) keeps it: Steward's spans already go where it
sends them, and the call changes nothing. The SDK and the exporter are the ``otel`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry import trace

from steward.errors import ConfigError

__all__ = ["INSTALL", "configure_otlp"]

INSTALL = "pip install 'langgraph-steward[otel]'"
DEFAULT_SERVICE = "steward"  # when neither service_name= nor the environment names one


def _traces_url(endpoint: str) -> str:
    """``endpoint`` as the exporter takes it: a URL with no path is the collector's, to which
    ``/v1/traces`` is added (as for ``OTEL_EXPORTER_OTLP_ENDPOINT``); else it is used as is."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"endpoint= must be an http(s) URL such as "
                          f"http://localhost:4318/v1/traces, got {endpoint!r}.")
    return endpoint.rstrip("/") + "/v1/traces" if parts.path in ("", "/") else endpoint


def configure_otlp(endpoint: str | None = None, *, service_name: str | None = None,
                   headers: Mapping[str, str] | None = None,
                   batch: bool = True) -> trace.TracerProvider:
    """Export the process's spans, Steward's among them, over OTLP/HTTP; returns the tracer
    provider in use.

    ``endpoint``: the collector's traces URL (default: the environment's, else
    ``http://localhost:4318/v1/traces``); a URL with no path gets ``/v1/traces``.
    ``service_name`` overrides ``OTEL_SERVICE_NAME`` (without either: ``"steward"``);
    ``headers`` are sent with each export (default ``OTEL_EXPORTER_OTLP_HEADERS``). ``batch``
    sends spans in the background, in batches (``False``: each as it ends, which blocks; for
    short scripts). Spans still queued are sent when the process exits.

    If the process already has a tracer provider, it is returned unchanged (see the module's
    docstring)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return current
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError(f"exporting spans over OTLP needs the OpenTelemetry SDK and its "
                          f"OTLP/HTTP exporter: {INSTALL}.") from exc
    resource = Resource.create({"service.name": service_name} if service_name else {})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE}))
    exporter = OTLPSpanExporter(endpoint=_traces_url(endpoint) if endpoint else None,
                                headers=dict(headers) if headers is not None else None)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
