"""GRPC_MAX_CONCURRENT_RPCS: RPCs past the limit are refused with RESOURCE_EXHAUSTED and RetryInfo.

grpc's own ``maximum_concurrent_rpcs`` refuses with a bare status (no retry advice) and counts
health checks too, so a saturated process would also look dead to Envoy and Kubernetes. This
interceptor sits inside the error interceptor: a refusal is a ``ResourceExhausted`` like any other
overload, mapped in the one place. Health checks are never refused.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from .errors import ResourceExhausted

EXEMPT = ("/grpc.health.v1.Health/",)
RETRY_AFTER_SECONDS = 0.5


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (handler, wrapped), as in ErrorInterceptor

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(EXEMPT):
            return handler
        cached = self._wrapped.get(details.method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(handler))
            self._wrapped[details.method] = cached
        return cached[1]

    def _admit(self) -> None:
        if self.active >= self.limit:
            raise ResourceExhausted(f"more than {self.limit} calls in progress (GRPC_MAX_CONCURRENT_RPCS)",
                                    retry_after=RETRY_AFTER_SECONDS)
        self.active += 1

    def _unary_response(self, behavior: Callable) -> Callable:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self._admit()
            try:
                return await behavior(request, context)
            finally:
                self.active -= 1

        return handler

    def _stream_response(self, behavior: Callable) -> Callable:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self._admit()
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        yield response
                else:  # a coroutine that writes with context.write()
                    await result
            finally:
                self.active -= 1

        return handler

    def _wrap(self, handler: Any) -> Any:
        kwargs = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary_response(handler.unary_unary), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._unary_response(handler.stream_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._stream_response(handler.unary_stream), **kwargs)
        return grpc.stream_stream_rpc_method_handler(self._stream_response(handler.stream_stream), **kwargs)
