"""Prometheus metrics: the RPC metrics every service shares, store timings, and the /metrics server.

Metric names follow the conventions Grafana dashboards for gRPC already use (``grpc_server_*``, as in
go-grpc-prometheus); BanHammer's own are ``banhammer_*``. Labels are bounded sets: a registered
method, a status code, a store name and one of its methods; never a player id, subject or token.
The catalogue is listed in the README (Operability) and checked by tests/runtime/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from prometheus_client import (REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
                               start_http_server)

log = logging.getLogger("banhammer.metrics")

# `*_created` series double the exposition and nothing here reads them (rate() copes with restarts).
disable_created_metrics()

#: Seconds; from a cache hit (~1 ms) to the longest deadline the gateway allows (60 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_RPC = ("grpc_service", "grpc_method", "grpc_type")

RPC_STARTED = Counter("grpc_server_started", "RPCs started on the server", _RPC)
RPC_HANDLED = Counter("grpc_server_handled", "RPCs completed on the server, by status code", (*_RPC, "grpc_code"))
RPC_SECONDS = Histogram("grpc_server_handling_seconds", "Time from an RPC's start to its status (streams: whole "
                        "stream)", _RPC, buckets=LATENCY_BUCKETS)
RPC_IN_FLIGHT = Gauge("grpc_server_in_flight", "RPCs in progress", ("grpc_service", "grpc_method"))

STORE_SECONDS = Histogram("banhammer_store_operation_seconds", "Duration of one store operation (a store class's "
                          "method: statement, Redis command or script, InfluxDB request)", ("store", "operation"),
                          buckets=LATENCY_BUCKETS)
STORE_FAILURES = Counter("banhammer_store_unavailable", "Store operations that failed because the store could not "
                         "be reached (answered UNAVAILABLE or RESOURCE_EXHAUSTED)", ("store", "operation"))


def _split(method: str) -> tuple[str, str]:
    """``/banhammer.ingest.v1.IngestService/Record`` → (``banhammer.ingest.v1.IngestService``, ``Record``)."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _kind(handler: Any) -> str:
    if handler.unary_unary:
        return "unary"
    if handler.stream_unary:
        return "client_stream"
    if handler.unary_stream:
        return "server_stream"
    return "bidi_stream"


def _code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status the caller sees: what the servicer or the error interceptor set (abort sets it)."""
    code = context.code()
    if code is not None:
        return code.name if isinstance(code, grpc.StatusCode) else grpc.StatusCode(code).name
    if exc is None:
        return "OK"
    # Cancelled by the caller or the deadline; anything else unmapped is grpc's UNKNOWN.
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN"


class _Call:
    """One RPC's bookkeeping: started and in flight now, handled and timed when it ends."""

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        RPC_STARTED.labels(*labels).inc()
        RPC_IN_FLIGHT.labels(*labels[:2]).inc()
        self.start = time.perf_counter()

    def end(self, context: grpc.aio.ServicerContext, exc: BaseException | None) -> None:
        RPC_IN_FLIGHT.labels(*self.labels[:2]).dec()
        RPC_SECONDS.labels(*self.labels).observe(time.perf_counter() - self.start)
        RPC_HANDLED.labels(*self.labels, _code(context, exc)).inc()


def _unary_response(behavior: Callable, labels: tuple[str, str, str]) -> Callable:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call, failure = _Call(labels), None
        try:
            return await behavior(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.end(context, failure)

    return handler


def _stream_response(behavior: Callable, labels: tuple[str, str, str]) -> Callable:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call, failure = _Call(labels), None
        try:
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:
                await result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.end(context, failure)

    return handler


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor: it sees every registered method's final status, refusals included.
    Unknown methods (UNIMPLEMENTED by grpc itself) are not counted, so the method label stays bounded."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (handler, wrapped), as in ErrorInterceptor

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        cached = self._wrapped.get(details.method)
        if cached is None or cached[0] is not handler:
            cached = (handler, _wrap(handler, details.method))
            self._wrapped[details.method] = cached
        return cached[1]


def _wrap(handler: Any, method: str) -> Any:
    kind = _kind(handler)
    labels = (*_split(method), kind)
    kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if kind == "unary":
        return grpc.unary_unary_rpc_method_handler(_unary_response(handler.unary_unary, labels), **kwargs)
    if kind == "client_stream":
        return grpc.stream_unary_rpc_method_handler(_unary_response(handler.stream_unary, labels), **kwargs)
    if kind == "server_stream":
        return grpc.unary_stream_rpc_method_handler(_stream_response(handler.unary_stream, labels), **kwargs)
    return grpc.stream_stream_rpc_method_handler(_stream_response(handler.stream_stream, labels), **kwargs)


class MetricsServer:
    """``GET /metrics`` (Prometheus text format, prometheus_client's own server) on its own thread, so
    a scrape is answered even while the event loop is saturated."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.server, self.thread = start_http_server(port, addr=host, registry=registry)
        self.port = self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(host: str, port: int | None, default_port: int) -> MetricsServer | None:
    """Start the metrics server: ``port`` None means the service's default (best effort: a taken default
    port is logged and skipped, so several processes on one machine still start), 0 means off, and an
    explicit port that cannot be bound stops the process."""
    if port == 0 or (port is None and not default_port):
        return None
    try:
        server = MetricsServer(host, default_port if port is None else port)
    except OSError as exc:
        if port is not None:
            raise OSError(f"could not bind the metrics port {host}:{port} (METRICS_PORT): {exc}") from exc
        log.warning("metrics not served: default port taken", extra={"port": default_port, "reason": str(exc)})
        return None
    log.info("metrics", extra={"port": server.port, "path": "/metrics"})
    return server
