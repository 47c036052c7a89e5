"""OpenTelemetry from the runtime: client and server spans share a trace; logs carry its id."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from google.protobuf import wrappers_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.runtime.logs import JsonFormatter
from services.runtime.server import start_runtime
from services.runtime.telemetry import setup_telemetry

from .echo_service import SERVICE, SPEC

SV = wrappers_pb2.StringValue


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = setup_telemetry("banhammer-test", exporter=exporter)
    yield exporter, provider


async def test_client_and_server_spans_share_one_trace_and_logs_carry_it(spans, tmp_path):
    exporter, provider = spans
    (tmp_path / "ready").touch()
    runtime = await start_runtime([SPEC], environ={"GRPC_HOST": "127.0.0.1", "ECHO_READY_FILE": str(tmp_path / "ready")})
    capture = _Capture()
    logging.getLogger("banhammer.rpc").addHandler(capture)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            echo = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=SV.SerializeToString,
                                       response_deserializer=SV.FromString)
            assert (await echo(SV(value="hi"))).value == "hi"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await echo(SV(value="boom"))
    finally:
        logging.getLogger("banhammer.rpc").removeHandler(capture)
        await runtime.stop()
    provider.force_flush()
    finished = [s for s in exporter.get_finished_spans() if s.name == f"/{SERVICE}/Echo"]
    servers = [s for s in finished if s.kind == SpanKind.SERVER]
    clients = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert len(servers) == 2 and len(clients) == 2
    for server in servers:
        parent = next(c for c in clients if c.context.span_id == server.parent.span_id)
        assert parent.context.trace_id == server.context.trace_id
    # The internal error's log line and the caller's reference name the failing server span's trace.
    failing = next(s for s in servers if not s.status.is_ok)
    trace_id = format(failing.context.trace_id, "032x")
    assert trace_id in err.value.details()
    logged = [line for line in capture.lines if line["msg"] == "unhandled error"]
    assert logged and logged[0]["trace_id"] == trace_id and "hunter2" in logged[0]["exc"]


def test_nothing_is_recorded_until_something_exports():
    from opentelemetry.sdk.trace import TracerProvider

    from services.runtime.telemetry import _export, _ExportAwareSampler

    provider = TracerProvider(sampler=_ExportAwareSampler(1.0))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("before") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid  # ids still exist for logs and propagation
    exporter = InMemorySpanExporter()
    _export(provider, exporter)
    with tracer.start_as_current_span("after") as span:
        assert span.is_recording()
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["after"]
