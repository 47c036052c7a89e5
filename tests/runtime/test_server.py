"""The shared runtime: error mapping, malformed and oversized input, health, reflection."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import wrappers_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.runtime.errors import MAX_DESCRIPTION_BYTES, MAX_FIELD_BYTES, MAX_MESSAGE_BYTES, MAX_VIOLATIONS
from services.runtime.server import start_runtime

from .echo_service import SERVICE, SPEC

SV = wrappers_pb2.StringValue


@pytest.fixture
async def echo(tmp_path):
    ready = tmp_path / "ready"
    runtime = await start_runtime(
        [SPEC],
        environ={"GRPC_HOST": "127.0.0.1", "GRPC_MAX_MESSAGE_BYTES": str(1024 * 1024),
                 "HEALTH_INTERVAL_SECONDS": "0.1", "ECHO_READY_FILE": str(ready)},
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    yield runtime, channel, ready
    await channel.close()
    await runtime.stop()


def _unary(channel, raw=False):
    return channel.unary_unary(
        f"/{SERVICE}/Echo",
        request_serializer=(lambda b: b) if raw else SV.SerializeToString,
        response_deserializer=SV.FromString,
    )


def _details(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no google.rpc.Status details in trailers")


async def _wait_health(channel, service: str, want, timeout: float = 10.0):
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        status = (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status
        if status == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"health of {service!r} stayed {status}, wanted {want}")
        await asyncio.sleep(0.05)


async def test_health_is_not_serving_until_stores_reachable(echo):
    runtime, channel, ready = echo
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        got = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert got.status == health_pb2.HealthCheckResponse.NOT_SERVING
    # Liveness is about the process only: SERVING even while the stores are unreachable.
    got = await stub.Check(health_pb2.HealthCheckRequest(service="liveness"))
    assert got.status == health_pb2.HealthCheckResponse.SERVING
    ready.touch()
    await _wait_health(channel, SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await _wait_health(channel, "", health_pb2.HealthCheckResponse.SERVING)
    # A store that goes away flips health back.
    runtime.services["echo"].healthy = False
    await _wait_health(channel, "", health_pb2.HealthCheckResponse.NOT_SERVING)


async def test_invalid_argument_carries_field_violations(echo):
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel)(SV(value="invalid"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = _details(err.value)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("value", "must not be 'invalid'"), ("other", "also bad")]


async def test_errors_echoing_input_stay_within_the_metadata_limits(echo):
    # 10,000 violations, the first quoting 280 KB of the request (with characters that need percent-encoding):
    # unbounded, the trailers would pass every peer's header limit and the caller would see UNAVAILABLE.
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel)(SV(value="echo-many:" + "é\n\x01" * 70_000))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailers = sum(len(k) + len(v) for k, v in err.value.trailing_metadata())
    assert trailers < 6 * 1024
    assert err.value.details().endswith("(and 9999 more)")
    assert len(err.value.details().encode()) <= MAX_MESSAGE_BYTES
    bad = error_details_pb2.BadRequest()
    assert _details(err.value).details[0].Unpack(bad)
    assert 1 <= len(bad.field_violations) <= MAX_VIOLATIONS
    assert bad.field_violations[0].field.startswith("items['echo-many:")
    assert all(len(v.field.encode()) <= MAX_FIELD_BYTES and len(v.description.encode()) <= MAX_DESCRIPTION_BYTES
               for v in bad.field_violations)


async def test_internal_errors_never_leak(echo):
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel)(SV(value="boom"))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in err.value.details() and "Traceback" not in err.value.details()
    assert "internal error (ref " in err.value.details()


async def test_unavailable_carries_retry_info(echo):
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel)(SV(value="unavailable"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_details_pb2.RetryInfo()
    assert _details(err.value).details[0].Unpack(info)
    assert info.retry_delay.ToNanoseconds() == 2_500_000_000


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0f"])
async def test_malformed_protobuf_is_invalid_argument(echo, payload):
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel, raw=True)(payload)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The server is unharmed: the next call works.
    assert (await _unary(channel)(SV(value="still here"))).value == "still here"


async def test_oversized_message_is_resource_exhausted(echo):
    _, channel, _ = echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _unary(channel)(SV(value="x" * (2 * 1024 * 1024)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await _unary(channel)(SV(value="ok"))).value == "ok"


async def test_stream_errors_are_mapped(echo):
    _, channel, _ = echo
    call = channel.stream_stream(f"/{SERVICE}/EchoStream", request_serializer=SV.SerializeToString,
                                 response_deserializer=SV.FromString)

    async def requests():
        yield SV(value="a")
        yield SV(value="invalid")

    got = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for response in call(requests()):
            got.append(response.value)
    assert got == ["a"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reflection_lists_the_services(echo):
    _, channel, _ = echo
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(ask()):
        names = {s.name for s in response.list_services_response.service}
        break
    assert {SERVICE, "grpc.health.v1.Health"} <= names
