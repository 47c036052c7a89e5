"""Domain errors: the only exceptions servicers and domain code raise on purpose.

The error interceptor maps each to a gRPC status with google.rpc details; anything else
becomes INTERNAL with a generic message, so internals never reach a caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

#: What an error may carry back. gRPC sends the message and the details as trailers, and a peer
#: refuses a whole response whose headers pass its limit (grpc clients: 8 KiB by default; Envoy then
#: resets the connection), so the caller would see UNAVAILABLE instead of the error. Field paths,
#: descriptions and messages often echo the caller's input: they are cut to these sizes (UTF-8
#: bytes), and the violation list to ``MAX_VIOLATIONS`` within ``MAX_DETAILS_BYTES``, which keeps
#: the trailers under 6 KiB even when every character needs percent-encoding.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_BYTES = 128
MAX_DESCRIPTION_BYTES = 256
MAX_VIOLATIONS = 20
MAX_DETAILS_BYTES = 3072


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary, marked with "…")."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode(errors="ignore") + "…"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field, named by its path in the request (e.g. ``actions[3].value``)."""

    field: str
    description: str


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = list(violations)
        first = self.violations[0] if self.violations else None
        default = (f"{clip(first.field, MAX_FIELD_BYTES)}: {clip(first.description, MAX_DESCRIPTION_BYTES)}"
                   if first else "invalid request")
        if len(self.violations) > 1:
            default += f" (and {len(self.violations) - 1} more)"
        super().__init__(message or default)

    @classmethod
    def field(cls, field: str, description: str) -> "InvalidArgument":
        return cls([FieldViolation(field, description)])


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED


class _Retryable(DomainError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResourceExhausted(_Retryable):
    """Overload or quota: the caller should retry after ``retry_after`` seconds."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(_Retryable):
    """A store or dependency is unreachable; safe to retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(DomainError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
