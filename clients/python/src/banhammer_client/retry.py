"""Which failures are worth another try, and how long to wait: the server's RetryInfo first,
else exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

# A call that failed with these did not happen, or may be repeated (reads; batches carry a
# producer key and sequence, so a resent one is never stored twice).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``initial`` doubling up to ``maximum``, randomised (full jitter)."""

    initial: float = 0.1
    maximum: float = 5.0
    attempts: int = 5  # for unary calls; streams keep reconnecting until closed

    def delay(self, attempt: int, err: grpc.RpcError | None = None) -> float:
        advised = retry_delay(err) if err is not None else None
        if advised is not None:
            return advised
        return random.uniform(0, min(self.maximum, self.initial * 2 ** attempt))


def retry_delay(err: grpc.RpcError) -> float | None:
    """The RetryInfo delay (seconds) a failed call carries, or None."""
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            return status_retry_delay(status_pb2.Status.FromString(value))
    return None


def status_retry_delay(status: status_pb2.Status) -> float | None:
    """The RetryInfo delay of a google.rpc.Status (a stream's per-batch error), or None."""
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    return None
