"""OpenTelemetry: one tracer provider per process, instrumenting gRPC, asyncpg and redis.

Trace context is always propagated and its ids go into the logs; spans are recorded only while
something exports them (an OTLP endpoint, OTEL_EXPORTER_OTLP_ENDPOINT, or a test's exporter), so a
process without a collector does not pay for recording spans nobody reads (nor, until then, for
Redis client spans at all).
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, SamplingResult, TraceIdRatioBased

log = logging.getLogger(__name__)

_instrumented = False
_redis_instrumented = False
_provider: TracerProvider | None = None


class _ExportAwareSampler(Sampler):
    """ParentBased(ratio) once an exporter is attached; before that, record nothing (ids still flow)."""

    def __init__(self, ratio: float) -> None:
        self.exporting = False
        self._on = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(self, *args, **kwargs) -> SamplingResult:
        return (self._on if self.exporting else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"ExportAware({self._on.get_description()})"


def _export(provider: TracerProvider, exporter: SpanExporter) -> None:
    provider.add_span_processor(BatchSpanProcessor(exporter))
    provider.sampler.exporting = True  # type: ignore[attr-defined]
    _instrument_redis()


def _instrument_redis() -> None:
    """Redis client spans, from the first exporter on. Until something exports, each command would
    pay for a span nobody reads (~25 µs, a fifth of a pooled redis-py call); unlike the gRPC server
    spans they carry no trace id a log needs. The instrumentor patches redis-py's classes, so
    clients created before this get spans too."""
    global _redis_instrumented
    if not _redis_instrumented:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
        _redis_instrumented = True


def setup_telemetry(service_name: str, exporter: SpanExporter | None = None, otlp_endpoint: str = "",
                    sample_ratio: float = 1.0) -> TracerProvider:
    """Install the global tracer provider and library instrumentation (idempotent per process).

    ``exporter`` overrides the OTLP exporter (tests pass an in-memory or custom one).
    """
    global _instrumented, _provider
    if _provider is not None:
        # The OTel API allows one global provider per process; several services hosted
        # in one process (tests, -target style) share it.
        if exporter is not None:
            _export(_provider, exporter)
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                              sampler=_ExportAwareSampler(sample_ratio))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_endpoint.startswith("http://"))
        log.info("exporting traces over OTLP", extra={"endpoint": otlp_endpoint})
    if exporter is not None:
        _export(provider, exporter)
    trace.set_tracer_provider(provider)
    _provider = provider
    if not _instrumented:
        # Instrumentors patch library entry points, so they must run before servers,
        # channels and pools are created.
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer

        GrpcAioInstrumentorServer().instrument()
        GrpcAioInstrumentorClient().instrument()
        AsyncPGInstrumentor().instrument()
        _instrumented = True
    return provider


def shutdown_telemetry(provider: TracerProvider) -> None:
    """Flush pending spans (bounded). The provider stays installed for the process."""
    provider.force_flush(timeout_millis=5000)
