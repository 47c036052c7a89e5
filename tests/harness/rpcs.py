"""Every RPC of the contracts, callable generically (request as bytes), for role × RPC tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pb2

from .paths import DESCRIPTOR

#: Outcomes that mean "the caller may not make this call" (gateway or service refusal).
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass(frozen=True)
class Rpc:
    path: str  # "/banhammer.pkg.v1.Service/Method"
    client_streaming: bool
    server_streaming: bool

    @property
    def package(self) -> str:
        return self.path[1:].split("/")[0].rsplit(".", 1)[0]

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[1]


def contract_rpcs() -> list[Rpc]:
    """Every banhammer RPC in the descriptor set (build/banhammer.pb)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return [Rpc(f"/{f.package}.{s.name}/{m.name}", m.client_streaming, m.server_streaming)
            for f in files.file if f.package.startswith("banhammer.") for s in f.service for m in s.method]


def call(channel: grpc.Channel, rpc: Rpc, request: bytes = b"", metadata: Sequence[tuple[str, str]] = (),
         timeout: float = 10.0) -> grpc.StatusCode:
    """Make one call and return its status. A server stream counts as OK once its first message (or
    its clean end) arrives; it is then cancelled, so long-lived streams do not hold the test."""
    md = tuple(metadata)
    try:
        if rpc.client_streaming:
            requests = iter([request]) if request else iter(())
            if rpc.server_streaming:
                stream = channel.stream_stream(rpc.path)(requests, metadata=md, timeout=timeout)
                next(stream, None)
                stream.cancel()
            else:
                channel.stream_unary(rpc.path)(requests, metadata=md, timeout=timeout)
        elif rpc.server_streaming:
            stream = channel.unary_stream(rpc.path)(request, metadata=md, timeout=timeout)
            next(stream, None)
            stream.cancel()
        else:
            channel.unary_unary(rpc.path)(request, metadata=md, timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
