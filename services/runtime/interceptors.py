"""The one server interceptor: domain errors → status codes with google.rpc details.

Malformed request bytes become INVALID_ARGUMENT instead of grpc's generic INTERNAL;
unexpected exceptions become INTERNAL with a trace id to quote, never a stack trace.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry import trace

from .errors import (MAX_DESCRIPTION_BYTES, MAX_DETAILS_BYTES, MAX_FIELD_BYTES, MAX_MESSAGE_BYTES, MAX_VIOLATIONS,
                     DomainError, InvalidArgument, ResourceExhausted, Unavailable, clip)
from .revocations import Revocations

log = logging.getLogger("banhammer.rpc")

_DETAILS_KEY = "grpc-status-details-bin"


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, TypeError) as exc:
            return _Malformed(exc)

    return parse


def _trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def _bad_request(error: InvalidArgument) -> error_details_pb2.BadRequest:
    """The first violations, each cut to size, as many as fit the bounds (see errors.MAX_*); the
    message already says how many there are in all."""
    detail = error_details_pb2.BadRequest()
    for v in error.violations[:MAX_VIOLATIONS]:
        detail.field_violations.add(field=clip(v.field, MAX_FIELD_BYTES),
                                    description=clip(v.description, MAX_DESCRIPTION_BYTES))
        if detail.ByteSize() > MAX_DETAILS_BYTES:
            del detail.field_violations[-1]
            break
    return detail


def status_for(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status a domain error is sent as, bounded in size whatever it echoes."""
    status = status_pb2.Status(code=error.code.value[0], message=clip(error.message, MAX_MESSAGE_BYTES))
    if isinstance(error, InvalidArgument):
        status.details.add().Pack(_bad_request(error))
    if isinstance(error, (ResourceExhausted, Unavailable)) and error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    if isinstance(exc, DomainError):
        status = status_for(exc)
        if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
            log.warning("rpc refused", extra={"method": method, "code": exc.code.name, "reason": status.message})
        await context.abort(exc.code, status.message, trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),))
    if isinstance(exc, NotImplementedError):  # generated servicer bases raise it for unwritten RPCs
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented")
    # The caller gets a reference to quote; the log line with the same reference has the details.
    ref = _trace_id() or uuid.uuid4().hex
    log.error("unhandled error", exc_info=exc, extra={"method": method, "ref": ref})
    message = f"internal error (ref {ref})"
    status = status_pb2.Status(code=code_pb2.INTERNAL, message=message)
    await context.abort(grpc.StatusCode.INTERNAL, message, trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),))


def _check(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise InvalidArgument.field("request", "could not parse the request message")
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _check(request)


def _passthrough(exc: BaseException) -> bool:
    # AbortError carries a status the servicer chose itself; cancellation must propagate.
    return isinstance(exc, (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit))


async def _revoked(context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the session of this stream was revoked")


def _wrap_unary_response(behavior: Callable, method: str, streaming_request: bool,
                         revocations: Revocations | None = None) -> Callable:
    guarded = streaming_request and revocations is not None

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        watch = revocations.watch(context) if guarded else None
        try:
            request = _checked_stream(request) if streaming_request else _check(request)
            return await behavior(request, context)
        except BaseException as exc:  # noqa: BLE001 - mapped, never leaked
            if watch is not None and watch.revoked and isinstance(exc, asyncio.CancelledError):
                await _revoked(context)
            if _passthrough(exc):
                raise
            await _abort(context, method, exc)
        finally:
            if watch is not None:
                revocations.release(watch)

    return handler


def _wrap_stream_response(behavior: Callable, method: str, streaming_request: bool,
                          revocations: Revocations | None = None) -> Callable:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        # Streams can outlive their caller's session: watched, ended when it is revoked.
        watch = revocations.watch(context) if revocations is not None else None
        try:
            request = _checked_stream(request) if streaming_request else _check(request)
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write()
                await result
        except BaseException as exc:  # noqa: BLE001
            if watch is not None and watch.revoked and isinstance(exc, asyncio.CancelledError):
                await _revoked(context)
            if _passthrough(exc):
                raise
            await _abort(context, method, exc)
        finally:
            if watch is not None:
                revocations.release(watch)

    return handler


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, revocations: Revocations | None = None) -> None:
        self.revocations = revocations
        # method -> (handler, wrapped): registered handlers are fixed for the server's life, so
        # each is wrapped once rather than on every call.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, method, self.revocations)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _wrap(handler: Any, method: str, revocations: Revocations | None = None) -> Any:
    kwargs = dict(
        request_deserializer=_safe_deserializer(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_wrap_unary_response(handler.unary_unary, method, False), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_wrap_unary_response(handler.stream_unary, method, True, revocations), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_wrap_stream_response(handler.unary_stream, method, False, revocations), **kwargs)
    return grpc.stream_stream_rpc_method_handler(_wrap_stream_response(handler.stream_stream, method, True, revocations), **kwargs)
