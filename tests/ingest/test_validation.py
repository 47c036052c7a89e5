"""Every validation rule of PlayerAction: INVALID_ARGUMENT naming the field (with the item index),
and nothing written."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from banhammer.ingest.v1 import ingest_pb2

from .conftest import player
from .helpers import action, field_violations, now, status_of


def deep(levels: int) -> dict:
    doc: dict = {"leaf": 1}
    for _ in range(levels - 1):
        doc = {"n": doc}
    return doc


# (case id, how to spoil a valid action, the field that must be named)
CASES = [
    ("player_id empty", lambda a: setattr(a, "player_id", ""), "player_id"),
    ("player_id 129 bytes", lambda a: setattr(a, "player_id", "p" * 129), "player_id"),
    ("player_id 128 chars but 256 bytes", lambda a: setattr(a, "player_id", "é" * 128), "player_id"),
    ("player_id NUL", lambda a: setattr(a, "player_id", "a\x00b"), "player_id"),
    ("action_type empty", lambda a: setattr(a, "action_type", ""), "action_type"),
    ("action_type 65 bytes", lambda a: setattr(a, "action_type", "k" * 65), "action_type"),
    ("value NaN", lambda a: setattr(a, "value", float("nan")), "value"),
    ("value +Inf", lambda a: setattr(a, "value", float("inf")), "value"),
    ("value -Inf", lambda a: setattr(a, "value", float("-inf")), "value"),
    ("time too late", lambda a: a.time.FromDatetime(now() - timedelta(hours=24, minutes=1)), "time"),
    ("time too far ahead", lambda a: a.time.FromDatetime(now() + timedelta(minutes=6)), "time"),
    ("metadata over 4 KiB", lambda a: a.metadata.update({"blob": "x" * 4100}), "metadata"),
    ("metadata depth 9", lambda a: a.metadata.update(deep(9)), "metadata"),
    ("metadata NaN number", lambda a: a.metadata.update({"x": float("nan")}), "metadata"),
    ("metadata NUL", lambda a: a.metadata.update({"x": "a\x00"}), "metadata"),
    ("event_id 65 bytes", lambda a: setattr(a, "event_id", "e" * 65), "event_id"),
]


@pytest.mark.parametrize("spoil,field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_invalid_item_rejects_batch(stub, db, spoil, field):
    pid = player()
    items = [action(pid, "kill", 1.0, event_id=f"e{i}") for i in range(3)]
    bad = items[1]
    spoil(bad)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=items))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(status_of(err.value))) == [f"actions[1].{field}"]
    # The same action alone through the unary RPC: the path is "action.<field>".
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordAction(ingest_pb2.RecordActionRequest(action=bad))
    assert list(field_violations(status_of(err.value))) == [f"action.{field}"]
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1", pid) == 0


async def test_limits_themselves_are_accepted(stub, db):
    pid = "é" * 64  # 128 bytes
    edge = action(pid, "k" * 64, -1e15, event_id="e" * 64, metadata=deep(8))
    edge.metadata.update({"pad": "y" * 3900})
    await stub.RecordAction(ingest_pb2.RecordActionRequest(action=edge))
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1", pid) == 1


async def test_empty_and_oversized_batches(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(ingest_pb2.RecordActionsRequest())
    assert list(field_violations(status_of(err.value))) == ["actions"]
    pid = player()
    too_many = ingest_pb2.RecordActionsRequest(actions=[action(pid, "k") for _ in range(10_001)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(too_many)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(status_of(err.value))) == ["actions"]


async def test_unary_without_action(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordAction(ingest_pb2.RecordActionRequest())
    assert list(field_violations(status_of(err.value))) == ["action"]


async def test_every_bad_item_is_named(stub):
    pid = player()
    items = [action(pid, "kill", float("nan")) for _ in range(3)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=items))
    assert set(field_violations(status_of(err.value))) == {f"actions[{i}].value" for i in range(3)}
