"""Small helpers for the energy tests."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """Field violations of an INVALID_ARGUMENT error, field -> description."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return {v.field: v.description for v in bad.field_violations}
    return {}


async def expect_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        assert err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()}"
        return err
    raise AssertionError(f"expected {code.name}, call succeeded")
