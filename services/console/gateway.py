"""Calls through the gateway, as the signed-in caller: JSON in, the RPC, JSON out.

The console holds no privileges of its own for a caller's work: every call carries the caller's
own bearer token, so the gateway judges it exactly as it would a call from grpcurl. Messages are
found in the generated descriptors and converted with protobuf's JSON mapping (the same one the
gateway's transcoder uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2, status_pb2

from services.runtime import access


@dataclass(frozen=True)
class CallError(Exception):
    code: grpc.StatusCode
    message: str
    details: list[dict[str, Any]]

    @property
    def http_status(self) -> int:
        return _HTTP.get(self.code, 502)


_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def _classes(path: str) -> tuple[type, type, bool]:
    access.load()  # imports every generated module, so the pool knows every message
    service, method = path.strip("/").split("/")
    m = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(method)
    return (message_factory.GetMessageClass(m.input_type), message_factory.GetMessageClass(m.output_type),
            m.server_streaming)


def _details(err: grpc.aio.AioRpcError) -> list[dict[str, Any]]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            return [_detail(d) for d in status.details]
    return []


def _detail(d) -> dict[str, Any]:
    try:  # error_details_pb2 (imported above) registers BadRequest, RetryInfo, ... for this
        return json_format.MessageToDict(d, preserving_proto_field_name=True)
    except TypeError:  # a detail type this build does not know: named, not decoded
        return {"@type": d.type_url}


assert error_details_pb2.BadRequest  # imported for its registration of the detail types


class Gateway:
    def __init__(self, addr: str, timeout: float) -> None:
        self.channel = grpc.aio.insecure_channel(addr)
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close()

    async def call(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """Unary RPC ``path`` (``/pkg.Service/Method``) with a JSON ``body``; the JSON answer."""
        request_type, response_type, _ = _classes(path)
        request = json_format.ParseDict(body, request_type())
        rpc = self.channel.unary_unary(path, request_serializer=request_type.SerializeToString,
                                       response_deserializer=response_type.FromString)
        try:
            response = await rpc(request, metadata=_auth(token), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            raise CallError(err.code(), err.details() or "", _details(err)) from None
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    async def stream(self, path: str, body: dict[str, Any], token: str):
        """Server-streaming RPC ``path``: yields each response message."""
        request_type, response_type, _ = _classes(path)
        request = json_format.ParseDict(body, request_type())
        rpc = self.channel.unary_stream(path, request_serializer=request_type.SerializeToString,
                                        response_deserializer=response_type.FromString)
        try:
            async for response in rpc(request, metadata=_auth(token), timeout=self.timeout * 6):
                yield response
        except grpc.aio.AioRpcError as err:
            raise CallError(err.code(), err.details() or "", _details(err)) from None


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()
