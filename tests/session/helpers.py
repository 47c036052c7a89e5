"""Small helpers for the session tests: unique names, durations, status details."""

from __future__ import annotations

import itertools
import uuid

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

_n = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one Redis database)."""
    return f"{prefix}-{next(_n)}-{uuid.uuid4().hex[:8]}"


def dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(seconds * 1000))
    return d


def violations(err: grpc.aio.AioRpcError) -> list[str]:
    """Field paths of the google.rpc.BadRequest details of an INVALID_ARGUMENT error."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []
