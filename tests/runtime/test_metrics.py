"""The runtime's Prometheus metrics: RPCs by method and code, latency, in flight, store timings, and the
/metrics port (METRICS_PORT: explicit, default, off)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import grpc
import pytest
from google.protobuf import wrappers_pb2

from services.runtime import config as cfg
from services.runtime.errors import Unavailable
from services.runtime.metrics import serve_metrics
from services.runtime.server import start_runtime
from services.runtime.store_errors import guard

from ..harness.metrics import Scrape
from ..harness.processes import free_port
from . import echo_service
from .echo_service import SERVICE, SPEC

SV = wrappers_pb2.StringValue


@pytest.fixture
async def echo(tmp_path):
    port = free_port()
    runtime = await start_runtime([SPEC], environ={"GRPC_HOST": "127.0.0.1", "METRICS_PORT": str(port)})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    yield runtime, channel, f"http://127.0.0.1:{port}/metrics"
    await channel.close()
    await runtime.stop()


def _scrape(url: str) -> Scrape:
    return Scrape.of(url)


async def _call(channel, text: str) -> grpc.StatusCode:
    try:
        await channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=SV.SerializeToString,
                                  response_deserializer=SV.FromString)(SV(value=text), timeout=10)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return err.code()


async def test_rpcs_counted_by_method_and_code(echo):
    runtime, channel, url = echo
    before = await asyncio.to_thread(_scrape, url)
    calls = {"hello": 3, "invalid": 2, "unavailable": 1, "boom": 1}
    for text, n in calls.items():
        for _ in range(n):
            await _call(channel, text)
    stream = channel.stream_stream(f"/{SERVICE}/EchoStream", request_serializer=SV.SerializeToString,
                                   response_deserializer=SV.FromString)
    replies = [r.value async for r in stream(iter([SV(value="a"), SV(value="b")]))]
    assert replies == ["a", "b"]
    after = await asyncio.to_thread(_scrape, url)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    echo_labels = dict(grpc_service=SERVICE, grpc_method="Echo")
    assert delta("grpc_server_started_total", **echo_labels, grpc_type="unary") == 7
    assert delta("grpc_server_handled_total", **echo_labels, grpc_code="OK") == 3
    assert delta("grpc_server_handled_total", **echo_labels, grpc_code="INVALID_ARGUMENT") == 2
    assert delta("grpc_server_handled_total", **echo_labels, grpc_code="UNAVAILABLE") == 1
    assert delta("grpc_server_handled_total", **echo_labels, grpc_code="INTERNAL") == 1
    assert delta("grpc_server_handling_seconds_count", **echo_labels) == 7
    assert delta("grpc_server_handling_seconds_sum", **echo_labels) > 0
    # Buckets are cumulative: the +Inf bucket holds every call.
    assert delta("grpc_server_handling_seconds_bucket", **echo_labels, le="+Inf") == 7
    stream_labels = dict(grpc_service=SERVICE, grpc_method="EchoStream", grpc_type="bidi_stream")
    assert delta("grpc_server_handled_total", **stream_labels, grpc_code="OK") == 1
    assert after.value("grpc_server_in_flight", **echo_labels) == 0
    # Health checks are RPCs too, but the runtime's own unknown methods are not counted (bounded labels).
    assert not after.series("grpc_server_started_total", grpc_method="NoSuchMethod")


async def test_in_flight_follows_open_calls(echo):
    runtime, channel, url = echo
    echo_service.RELEASE.clear()
    pending = [asyncio.create_task(_call(channel, f"hold:{i}")) for i in range(3)]
    deadline = time.monotonic() + 10
    while (await asyncio.to_thread(_scrape, url)).value("grpc_server_in_flight", grpc_method="Echo") != 3:
        assert time.monotonic() < deadline, "in flight never reached 3"
        await asyncio.sleep(0.05)
    echo_service.RELEASE.set()
    assert await asyncio.gather(*pending) == [grpc.StatusCode.OK] * 3
    assert (await asyncio.to_thread(_scrape, url)).value("grpc_server_in_flight", grpc_method="Echo") == 0


async def test_unknown_method_is_not_a_label(echo):
    runtime, channel, url = echo
    code = None
    try:
        await channel.unary_unary("/test.echo.v1.EchoService/Nope")(b"", timeout=5)
    except grpc.aio.AioRpcError as err:
        code = err.code()
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert not (await asyncio.to_thread(_scrape, url)).series("grpc_server_started_total", grpc_method="Nope")


@guard("test store")
class _Store:
    async def read(self) -> int:
        return 1

    async def down(self) -> None:
        raise ConnectionRefusedError("no server")


async def test_guarded_store_operations_are_timed(echo):
    runtime, channel, url = echo
    before = await asyncio.to_thread(_scrape, url)
    store = _Store()
    assert await store.read() == 1
    with pytest.raises(Unavailable):
        await store.down()
    after = await asyncio.to_thread(_scrape, url)
    read = dict(store="test store", operation="_Store.read")
    down = dict(store="test store", operation="_Store.down")
    assert after.value("banhammer_store_operation_seconds_count", **read) - \
        before.value("banhammer_store_operation_seconds_count", **read) == 1
    assert after.value("banhammer_store_unavailable_total", **down) - \
        before.value("banhammer_store_unavailable_total", **down) == 1
    assert after.value("banhammer_store_unavailable_total", **read) == 0


def test_metrics_port_zero_is_off():
    assert serve_metrics("127.0.0.1", 0, 9999) is None
    assert serve_metrics("127.0.0.1", None, 0) is None  # a service without a default port


def test_explicit_port_taken_stops_the_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError, match="METRICS_PORT"):
            serve_metrics("127.0.0.1", s.getsockname()[1], 0)


def test_default_port_taken_is_skipped_with_a_warning(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with caplog.at_level(logging.WARNING, logger="banhammer.metrics"):
            assert serve_metrics("127.0.0.1", None, s.getsockname()[1]) is None
    assert "default port taken" in caplog.text


def test_metrics_port_is_typed_config():
    from services.runtime.server import ServerConfig

    assert cfg.load(ServerConfig, {}).metrics_port is None
    assert cfg.load(ServerConfig, {"METRICS_PORT": "0"}).metrics_port == 0
    with pytest.raises(cfg.ConfigError, match="METRICS_PORT"):
        cfg.load(ServerConfig, {"METRICS_PORT": "many"})


async def test_admission_refusals_are_counted_with_the_code_the_caller_got():
    port = free_port()
    runtime = await start_runtime([SPEC], environ={"GRPC_HOST": "127.0.0.1", "METRICS_PORT": str(port),
                                                   "GRPC_MAX_CONCURRENT_RPCS": "1"})
    url = f"http://127.0.0.1:{port}/metrics"
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        labels = dict(grpc_service=SERVICE, grpc_method="Echo", grpc_code="RESOURCE_EXHAUSTED")
        before = (await asyncio.to_thread(_scrape, url)).value("grpc_server_handled_total", **labels)
        echo_service.RELEASE.clear()
        held = asyncio.create_task(_call(channel, "hold:admission"))
        deadline = time.monotonic() + 10
        while (await asyncio.to_thread(_scrape, url)).value("grpc_server_in_flight", grpc_method="Echo") != 1:
            assert time.monotonic() < deadline, "the held call never started"
            await asyncio.sleep(0.05)
        assert await _call(channel, "refused") == grpc.StatusCode.RESOURCE_EXHAUSTED
        echo_service.RELEASE.set()
        assert await held == grpc.StatusCode.OK
        after = (await asyncio.to_thread(_scrape, url)).value("grpc_server_handled_total", **labels)
        assert after - before == 1
    finally:
        await channel.close()
        await runtime.stop()
