"""GRPC_MAX_CONCURRENT_RPCS: calls past the limit get RESOURCE_EXHAUSTED with RetryInfo, health checks
still answer, and every admitted call completes (its acknowledged work is kept)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import wrappers_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.server import start_runtime

from . import echo_service
from .echo_service import SERVICE, SPEC
from .test_server import _details

SV = wrappers_pb2.StringValue
LIMIT = 3


@pytest.fixture
async def limited(tmp_path):
    journal = tmp_path / "journal"
    runtime = await start_runtime([SPEC], environ={
        "GRPC_HOST": "127.0.0.1", "HEALTH_INTERVAL_SECONDS": "0.1", "GRPC_MAX_CONCURRENT_RPCS": str(LIMIT),
        "ECHO_JOURNAL": str(journal)})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    echo_service.RELEASE.clear()
    yield channel, journal
    echo_service.RELEASE.set()
    await channel.close()
    await runtime.stop()


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_calls_past_the_limit_are_refused_with_retry_advice(limited):
    channel, journal = limited
    echo = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=SV.SerializeToString,
                               response_deserializer=SV.FromString)
    held = [asyncio.ensure_future(echo(SV(value=f"hold:{i}"), timeout=30)) for i in range(LIMIT)]
    await until(lambda: echo_service.INFLIGHT["n"] == LIMIT, "the held calls never all arrived")

    for call in (echo(SV(value="one too many"), timeout=5),
                 channel.stream_stream(f"/{SERVICE}/EchoStream", request_serializer=SV.SerializeToString,
                                       response_deserializer=SV.FromString)(iter([SV(value="s")]), timeout=5).read()):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_details_pb2.RetryInfo()
        assert _details(err.value).details[0].Unpack(info) and info.retry_delay.ToNanoseconds() > 0
    # A saturated process is busy, not dead: its health still answers.
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    echo_service.RELEASE.set()
    assert sorted(r.value for r in await asyncio.gather(*held)) == [f"hold:{i}" for i in range(LIMIT)]
    assert sorted(journal.read_text().split()) == [f"hold:{i}" for i in range(LIMIT)]
    assert "one too many" not in journal.read_text()
    assert (await echo(SV(value="admitted again"), timeout=5)).value == "admitted again"
