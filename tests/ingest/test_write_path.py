"""RecordAction / RecordActions against real PostgreSQL: storage, rollups, idempotency, all-or-nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import grpc
import pytest

from banhammer.ingest.v1 import ingest_pb2

from tests.harness.aggregates import player_totals

from .conftest import player
from .helpers import action, field_violations, folded, now, status_of


async def rows_of(db, pid: str) -> list:
    return await db.fetch("SELECT * FROM player_actions_ts WHERE player_id = $1 ORDER BY time, event_id", pid)


async def hour_counts(db, pid: str) -> list[tuple]:
    return [tuple(r) for r in await db.fetch(
        "SELECT bucket, actions, first_time, last_time FROM player_hours WHERE player_id = $1 ORDER BY 1", pid)]


async def test_seed_body_is_stored_and_folded_into_the_summary(stub, db):
    pid = player()
    reply = await stub.RecordAction(ingest_pb2.RecordActionRequest(action=action(pid, "reward_collection", 100.0)))
    assert not reply.duplicate
    stored_at = reply.time.ToDatetime().replace(tzinfo=now().tzinfo)
    assert abs((now() - stored_at).total_seconds()) < 5

    rows = await rows_of(db, pid)
    assert [(r["action_type"], r["value"], r["event_id"], r["metadata"]) for r in rows] == \
        [("reward_collection", 100.0, None, None)]
    assert rows[0]["time"] == stored_at
    await folded(db)
    hour = stored_at.replace(minute=0, second=0, microsecond=0)
    assert await hour_counts(db, pid) == [(hour, 1, stored_at, stored_at)]
    summary = await player_totals(db, pid)
    assert summary["action_count"] == 1 and summary["first_seen"] == summary["last_seen"] == stored_at


async def test_folds_are_exact_across_batches(stub, db):
    pid = player()
    base = (now() - timedelta(hours=2)).replace(minute=10, second=0, microsecond=0)
    first = [action(pid, "kill", v, at=base + timedelta(seconds=s)) for s, v in [(1, 2.0), (30, 5.0), (70, 1.0)]]
    second = [action(pid, "kill", 7.0, at=base + timedelta(seconds=59)), action(pid, "loot", 3.0, at=base)]
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=first))
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=second))

    await folded(db)
    hour = base.replace(minute=0)
    assert await hour_counts(db, pid) == [(hour, 5, base, base + timedelta(seconds=70))]
    summary = await player_totals(db, pid)
    assert (summary["action_count"], summary["first_seen"], summary["last_seen"]) == \
        (5, base, base + timedelta(seconds=70))


async def test_retried_batch_is_all_duplicates(stub, db):
    pid = player()
    batch = [action(pid, "kill", float(i), event_id=f"e{i}", metadata={"map": "dust", "i": i}) for i in range(50)]
    first = await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    again = await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    assert (first.accepted_count, first.duplicate_count) == (50, 0)
    assert (again.accepted_count, again.duplicate_count) == (0, 50)
    rows = await rows_of(db, pid)
    assert len(rows) == 50 and len({r["event_id"] for r in rows}) == 50
    assert json.loads({r["event_id"]: r["metadata"] for r in rows}["e7"]) == {"map": "dust", "i": 7}
    await folded(db)
    assert (await player_totals(db, pid))["action_count"] == 50  # duplicates are not counted either
    assert [r[1] for r in await hour_counts(db, pid)] == [50]


async def test_unary_retry_reports_duplicate(stub, db):
    pid = player()
    req = ingest_pb2.RecordActionRequest(action=action(pid, "kill", event_id="once"))
    assert not (await stub.RecordAction(req)).duplicate
    assert (await stub.RecordAction(req)).duplicate
    assert len(await rows_of(db, pid)) == 1


async def test_duplicate_event_ids_within_a_batch_count_once(stub, db):
    pid, other = player(), player()
    batch = [action(pid, "kill", 1.0, event_id="x"), action(pid, "kill", 2.0, event_id="x"),
             action(other, "kill", 3.0, event_id="x"),  # same event id, other player: distinct
             action(pid, "kill", 4.0)]  # no event id: never deduplicated
    reply = await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    assert (reply.accepted_count, reply.duplicate_count) == (3, 1)
    assert sorted(r["value"] for r in await rows_of(db, pid)) == [1.0, 4.0]  # the first occurrence won
    assert [r["value"] for r in await rows_of(db, other)] == [3.0]


async def test_one_bad_item_rejects_the_whole_batch(stub, db):
    pid = player()
    batch = [action(pid, "kill", 1.0, event_id="a"), action(pid, "kill", 2.0, event_id="b"),
             action(pid, "kill", float("nan"), event_id="c"), action(pid, "", 1.0)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(status_of(err.value))) == {"actions[2].value", "actions[3].action_type"}
    assert await rows_of(db, pid) == []
    assert await db.fetchval("SELECT count(*) FROM action_event_ids WHERE player_id = $1", pid) == 0
    # Nothing was claimed: the corrected batch is accepted in full.
    batch[2].value, batch[3].action_type = 3.0, "kill"
    reply = await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    assert (reply.accepted_count, reply.duplicate_count) == (4, 0)


async def test_concurrent_writers_overlapping_event_ids(stub, db):
    """Two game servers send the same 400 events in parallel, in different batch splits."""
    pid = player()
    events = [action(pid, "kill", float(i), event_id=f"ev{i}") for i in range(400)]
    calls = [events[i:i + 40] for i in range(0, 400, 40)] + [events[i:i + 25] for i in range(0, 400, 25)]
    replies = await asyncio.gather(*(stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=c)) for c in calls))
    assert sum(r.accepted_count for r in replies) == 400
    assert sum(r.duplicate_count for r in replies) == 400
    rows = await rows_of(db, pid)
    assert len(rows) == 400 and len({r["event_id"] for r in rows}) == 400
    await folded(db)
    assert (await player_totals(db, pid))["action_count"] == 400
    assert await db.fetchval("SELECT sum(actions) FROM player_hours WHERE player_id = $1", pid) == 400


async def test_many_concurrent_unary_calls_are_grouped_and_all_committed(stub, db):
    players = [player() for _ in range(200)]
    await asyncio.gather(*(stub.RecordAction(ingest_pb2.RecordActionRequest(action=action(p, "kill", 1.0)))
                           for p in players))
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = ANY($1)", players) == 200


async def test_event_times_inside_the_window_are_stored_as_sent(stub, db):
    pid = player()
    late, early = now() - timedelta(hours=23, minutes=59), now() + timedelta(minutes=4)
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=[action(pid, at=late), action(pid, at=early)]))
    assert [r["time"] for r in await rows_of(db, pid)] == [late, early]
