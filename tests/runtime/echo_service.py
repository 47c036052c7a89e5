"""A tiny service used to test the shared runtime without any store.

``Echo`` behaves according to the request text: ``invalid``, ``boom``, ``unavailable``,
``sleep:<ms>``, ``hold:<x>`` (waits until the in-process test sets ``RELEASE``); anything else is
echoed. Run as a process: ``python -m tests.runtime.echo_service``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import grpc
from google.protobuf import wrappers_pb2

from services.runtime import FieldViolation, InvalidArgument, Service, ServiceSpec, Unavailable, env
from services.runtime.server import main

SERVICE = "test.echo.v1.EchoService"


@dataclass(frozen=True)
class EchoConfig:
    ready_file: str = env("ECHO_READY_FILE", "", doc="if set, start() fails until this file exists")
    journal: str = env("ECHO_JOURNAL", "", doc="if set, each answered value is appended (fsync'd) here first")


INFLIGHT = {"n": 0}
RELEASE = asyncio.Event()


async def _respond(text: str, journal: str = "") -> wrappers_pb2.StringValue:
    if text == "invalid":
        raise InvalidArgument([FieldViolation("value", "must not be 'invalid'"), FieldViolation("other", "also bad")])
    if text.startswith("echo-many:"):  # an error echoing hostile input (a huge key) among 10,000 violations
        raise InvalidArgument([FieldViolation(f"items[{text!r}]", f"bad value {text!r}")]
                              + [FieldViolation(f"items[{i}]", "bad value") for i in range(1, 10_000)])
    if text == "boom":
        raise RuntimeError("secret internal detail: password=hunter2")
    if text == "unavailable":
        raise Unavailable("store down", retry_after=2.5)
    if text == "inflight":
        return wrappers_pb2.StringValue(value=str(INFLIGHT["n"]))
    if text.startswith(("sleep:", "hold:")):
        INFLIGHT["n"] += 1
        try:
            if text.startswith("hold:"):
                await RELEASE.wait()
            else:
                await asyncio.sleep(int(text.split(":")[1]) / 1000)
        finally:
            INFLIGHT["n"] -= 1
    if journal:  # the "commit": durable before the acknowledgement
        with open(journal, "a") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
    return wrappers_pb2.StringValue(value=text)


class EchoService(Service):
    service_names = (SERVICE,)

    def __init__(self, conf: EchoConfig) -> None:
        self.conf = conf
        self.healthy = True
        self.started = asyncio.Event()

    def register(self, server: grpc.aio.Server) -> None:
        async def echo(request, context):
            return await _respond(request.value, self.conf.journal)

        async def echo_stream(requests, context):
            async for request in requests:
                yield await _respond(request.value, self.conf.journal)

        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo, wrappers_pb2.StringValue.FromString, wrappers_pb2.StringValue.SerializeToString),
            "EchoStream": grpc.stream_stream_rpc_method_handler(
                echo_stream, wrappers_pb2.StringValue.FromString, wrappers_pb2.StringValue.SerializeToString),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    async def start(self) -> None:
        if self.conf.ready_file and not os.path.exists(self.conf.ready_file):
            raise ConnectionRefusedError("store not reachable yet")
        self.started.set()

    async def check(self) -> None:
        if not self.healthy:
            raise ConnectionRefusedError("store went away")


SPEC = ServiceSpec("echo", EchoConfig, EchoService, default_port=0)

if __name__ == "__main__":
    raise SystemExit(main([SPEC], argv=[]))
