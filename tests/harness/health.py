"""grpc.health.v1 helpers: poll with a deadline (never sleep as synchronisation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: The gateway routes grpc.health.v1 (and reflection) to the service named by this header.
GATEWAY_HEADER = "x-banhammer-service"


def gateway_metadata(target: str) -> tuple[tuple[str, str], ...]:
    """Metadata that sends a health/reflection call through Envoy to ``target`` (e.g. "ingest")."""
    return ((GATEWAY_HEADER, target),)


def _name(status: int) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def check_health(addr: str, service: str = "", *, metadata: Sequence[tuple[str, str]] = (),
                 timeout: float = 3.0) -> str:
    """One synchronous Check: "SERVING", "NOT_SERVING", ... or the gRPC status code name."""
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=tuple(metadata))
        except grpc.RpcError as exc:
            return exc.code().name
    return _name(reply.status)


async def wait_serving(addr: str, service: str = "", *, metadata: Sequence[tuple[str, str]] = (),
                       timeout: float = 30.0, interval: float = 0.2) -> None:
    """Poll Health/Check on ``addr`` until ``service`` is SERVING; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service),
                                         timeout=min(3.0, max(0.5, deadline - time.monotonic())),
                                         metadata=tuple(metadata))
                last = _name(reply.status)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            if time.monotonic() >= deadline:
                raise AssertionError(f"{addr} service {service!r} not SERVING after {timeout:.0f}s (last: {last})")
            await asyncio.sleep(interval)


def auth_metadata(token: str, target: str | None = None) -> tuple[tuple[str, str], ...]:
    """gRPC metadata for a call through the authenticated gateway (optionally health-routed)."""
    extra = gateway_metadata(target) if target else ()
    return (("authorization", f"Bearer {token}"), *extra)
