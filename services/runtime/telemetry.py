"""OpenTelemetry: one tracer provider per process, instrumenting gRPC, asyncpg and redis.

Spans are always created (their ids go into the logs); they are exported only when an OTLP
endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT), so a developer's laptop needs no collector.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

log = logging.getLogger(__name__)

_instrumented = False
_provider: TracerProvider | None = None


def setup_telemetry(service_name: str, exporter: SpanExporter | None = None, otlp_endpoint: str = "") -> TracerProvider:
    """Install the global tracer provider and library instrumentation (idempotent per process).

    ``exporter`` overrides the OTLP exporter (tests pass an in-memory or custom one).
    """
    global _instrumented, _provider
    if _provider is not None:
        # The OTel API allows one global provider per process; several services hosted
        # in one process (tests, -target style) share it.
        if exporter is not None:
            _provider.add_span_processor(BatchSpanProcessor(exporter))
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_endpoint.startswith("http://"))
        log.info("exporting traces over OTLP", extra={"endpoint": otlp_endpoint})
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    if not _instrumented:
        # Instrumentors patch library entry points, so they must run before servers,
        # channels and pools are created.
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        GrpcAioInstrumentorServer().instrument()
        GrpcAioInstrumentorClient().instrument()
        AsyncPGInstrumentor().instrument()
        RedisInstrumentor().instrument()
        _instrumented = True
    return provider


def shutdown_telemetry(provider: TracerProvider) -> None:
    """Flush pending spans (bounded). The provider stays installed for the process."""
    provider.force_flush(timeout_millis=5000)
