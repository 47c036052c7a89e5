"""ActionColumns: a batch as packed columns stores exactly what the same batch as actions stores,
and a malformed one is refused whole with field violations."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from banhammer.ingest.v1 import ingest_pb2

from .conftest import player
from .helpers import action, field_violations, now, status_of


def columns(pid_a: str, pid_b: str, at_us: int) -> ingest_pb2.ActionColumns:
    return ingest_pb2.ActionColumns(players=[pid_a, pid_b], player=[0, 1, 0, 0], action_types=["kill", "loot"],
                                    action_type=[0, 1, 1, 0], value=[1.0, 2.5, -3.0, 4.0],
                                    time_us=[at_us, at_us + 1, at_us + 2, at_us + 3], event_id=["a", "", "c", "a"])


async def stored(db, *pids: str) -> list[tuple]:
    return [tuple(r) for r in await db.fetch(
        "SELECT player_id, action_type, value, time, event_id FROM player_actions_ts WHERE player_id = ANY($1) "
        "ORDER BY time, player_id", list(pids))]


async def test_columns_store_what_the_same_actions_store(stub, db):
    t = now() - timedelta(seconds=5)
    at_us = int(t.timestamp() * 1_000_000)
    a, b = player(), player()
    reply = await stub.RecordActions(ingest_pb2.RecordActionsRequest(columns=columns(a, b, at_us)))
    # The fourth action repeats event id "a" of the same player: stored once, as with actions.
    assert (reply.accepted_count, reply.duplicate_count) == (3, 1)
    c, d = player(), player()
    base = t.replace(microsecond=t.microsecond)
    same = [action(c, "kill", 1.0, event_id="a", at=base), action(d, "loot", 2.5, at=base + timedelta(microseconds=1)),
            action(c, "loot", -3.0, event_id="c", at=base + timedelta(microseconds=2)),
            action(c, "kill", 4.0, event_id="a", at=base + timedelta(microseconds=3))]
    assert (await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=same))).accepted_count == 3
    rename = {a: c, b: d}
    assert [(rename[p], *rest) for p, *rest in await stored(db, a, b)] == await stored(db, c, d)


async def test_columns_without_times_or_ids_take_the_receive_time(stub, db):
    pid = player()
    req = ingest_pb2.RecordActionsRequest(columns=ingest_pb2.ActionColumns(
        players=[pid], player=[0] * 3, action_types=["move"], action_type=[0] * 3, value=[1, 2, 3]))
    assert (await stub.RecordActions(req)).accepted_count == 3
    rows = await stored(db, pid)
    assert [r[2] for r in rows] == [1, 2, 3] and all(r[4] is None for r in rows)
    assert abs((rows[0][3] - now()).total_seconds()) < 60


@pytest.mark.parametrize("shape, fields", [
    ({"players": ["x"], "player": [0, 1], "action_types": ["k"], "action_type": [0, 0], "value": [1, 1]},
     ["columns.player"]),
    ({"players": ["x"], "player": [0, 0], "action_types": ["k"], "action_type": [0], "value": [1, 1]},
     ["columns.action_type"]),
    ({"players": ["x"], "player": [0], "action_types": ["k"], "action_type": [0], "value": [1], "time_us": [1, 2]},
     ["columns.time_us"]),
    ({"players": ["x"], "player": [0], "action_types": ["k"], "action_type": [0], "value": [float("nan")]},
     ["columns.value[0]"]),
    ({"players": ["ok", ""], "player": [0, 1], "action_types": ["k"], "action_type": [0, 0], "value": [1, 1]},
     ["columns.players[1]"]),
    ({"players": ["x"], "player": [0, 0], "action_types": ["k"], "action_type": [0, 0], "value": [1, 1e16],
      "event_id": ["", "e" * 65]},
     ["columns.event_id[1]", "columns.value[1]"]),
    ({"players": ["x"], "player": [0], "action_types": ["k"], "action_type": [0], "value": [1], "time_us": [1]},
     ["columns.time_us[0]"]),
    ({}, ["columns.player"]),
])
async def test_malformed_columns_are_refused_whole(stub, db, shape, fields):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(ingest_pb2.RecordActionsRequest(columns=ingest_pb2.ActionColumns(**shape)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field_violations(status_of(err.value))) == fields


async def test_actions_and_columns_together_are_refused(stub, db):
    pid = player()
    req = ingest_pb2.RecordActionsRequest(actions=[action(pid)], columns=ingest_pb2.ActionColumns(
        players=[pid], player=[0], action_types=["k"], action_type=[0], value=[1]))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(req)
    assert list(field_violations(status_of(err.value))) == ["columns"]
    assert await stored(db, pid) == []


async def test_a_stream_takes_columns_with_a_producer_key(stub, db):
    pid = player()
    cols = ingest_pb2.ActionColumns(players=[pid], player=[0] * 100, action_types=["kill"], action_type=[0] * 100,
                                    value=[float(i) for i in range(100)])
    key = ingest_pb2.ProducerKey(producer_id=f"cols-{pid}")

    async def send():
        async def gen():
            yield ingest_pb2.StreamActionsRequest(sequence=1, columns=cols, producer=key)
        return [r async for r in stub.StreamActions(gen())]

    [first] = await send()
    [again] = await send()
    assert (first.accepted_count, first.duplicate) == (100, False) and again.duplicate
    assert len(await stored(db, pid)) == 100
