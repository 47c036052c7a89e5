"""Small helpers for the ingest tests: building actions, reading google.rpc error details, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from banhammer.common.v1 import common_pb2


def action(player_id: str, action_type: str = "test_action", value: float = 1.0, *, event_id: str = "",
           at: datetime | None = None, metadata: dict | None = None) -> common_pb2.PlayerAction:
    a = common_pb2.PlayerAction(player_id=player_id, action_type=action_type, value=value, event_id=event_id)
    if at is not None:
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(at)
        a.time.CopyFrom(ts)
    if metadata is not None:
        a.metadata.update(metadata)
    return a


def now() -> datetime:
    return datetime.now(timezone.utc)


def status_of(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no google.rpc.Status in {exc!r}")


def field_violations(status: status_pb2.Status) -> dict[str, str]:
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            return {v.field: v.description for v in br.field_violations}
    raise AssertionError(f"no BadRequest in {status}")


def retry_delay(status: status_pb2.Status) -> float | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0,
                     interval: float = 0.05) -> Any:
    """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(interval)


async def folded(db) -> None:
    """Fold every queued batch now (the materializer would, on its cadence): exactly once, so this is
    safe beside the service's own materializer."""
    from services.ingest.store import fold

    await fold.drain(db)
