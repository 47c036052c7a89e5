"""Reading google.rpc details off a failed call (sync or asyncio)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def retry_delay(err: grpc.RpcError) -> float | None:
    """Seconds of the RetryInfo detail of a failed call, or None when it gives no retry advice."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay.ToNanoseconds() / 1e9
    return None
