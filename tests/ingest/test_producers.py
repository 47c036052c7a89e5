"""Batch-level idempotency (ingest.proto ProducerKey): resends, reused keys, fencing, races.

Everything goes through the real service and a real PostgreSQL; what was stored is read back from
``player_actions_ts`` (rows carry their transaction's batch_id) and the queue tables.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from banhammer.ingest.v1 import ingest_pb2

from .conftest import player
from .helpers import action, field_violations, status_of


def producer() -> str:
    return f"game-{uuid.uuid4().hex[:10]}"


def batch(pid: str, n: int, start: float = 0.0) -> list:
    return [action(pid, "t_keyed", start + i) for i in range(n)]


async def stored(db, pid: str) -> int:
    return await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1", pid)


def keyed(actions, prod: str, seq: int, epoch: int = 0) -> ingest_pb2.RecordActionsRequest:
    return ingest_pb2.RecordActionsRequest(actions=actions, producer=ingest_pb2.ProducerKey(producer_id=prod, epoch=epoch),
                                           sequence=seq)


async def test_a_resent_batch_is_a_duplicate_and_stored_once(stub, db):
    pid, prod = player(), producer()
    first = await stub.RecordActions(keyed(batch(pid, 5), prod, 1))
    assert (first.accepted_count, first.duplicate_count, first.duplicate) == (5, 0, False)
    again = await stub.RecordActions(keyed(batch(pid, 5), prod, 1))
    assert (again.accepted_count, again.duplicate_count, again.duplicate) == (0, 5, True)
    # Another sequence (any order, gaps allowed) is another batch.
    other = await stub.RecordActions(keyed(batch(pid, 3, 100), prod, 7))
    assert (other.accepted_count, other.duplicate) == (3, False)
    older = await stub.RecordActions(keyed(batch(pid, 2, 200), prod, 4))
    assert (older.accepted_count, older.duplicate) == (2, False)
    assert await stored(db, pid) == 10
    # One batch id per transaction, every row stamped; uint64 sequences above 2^63 work too.
    big = await stub.RecordActions(keyed(batch(pid, 1, 300), prod, 2**64 - 1))
    assert not big.duplicate and (await stub.RecordActions(keyed(batch(pid, 1, 300), prod, 2**64 - 1))).duplicate
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1 AND batch_id IS NULL", pid) == 0


async def test_the_same_key_with_other_actions_is_refused_and_writes_nothing(stub, db):
    pid, prod = player(), producer()
    await stub.RecordActions(keyed(batch(pid, 4), prod, 1))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(keyed(batch(pid, 4, 50), prod, 1))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "different actions" in err.value.details()
    assert await stored(db, pid) == 4


async def test_a_higher_epoch_fences_the_lower_one(stub, db):
    pid, prod = player(), producer()
    await stub.RecordActions(keyed(batch(pid, 2), prod, 1, epoch=3))
    # The successor (epoch 4) commits; sequences restart freely under it.
    assert (await stub.RecordActions(keyed(batch(pid, 2, 10), prod, 1, epoch=4))).accepted_count == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(keyed(batch(pid, 2, 20), prod, 2, epoch=3))  # the zombie
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "fenced" in err.value.details()
    assert await stored(db, pid) == 4
    assert await db.fetchval("SELECT epoch FROM ingest_producers WHERE producer_id = $1", prod) == 4


async def test_racing_copies_of_a_batch_store_it_once(stub, db):
    pid, prod = player(), producer()
    replies = await asyncio.gather(*(stub.RecordActions(keyed(batch(pid, 50), prod, 9)) for _ in range(8)))
    assert sorted(r.duplicate for r in replies) == [False] + [True] * 7
    assert sum(r.accepted_count for r in replies) == 50
    assert await stored(db, pid) == 50


async def test_stream_acks_duplicates_and_reports_a_fenced_batch_without_closing(stub, db):
    pid, prod = player(), producer()

    def req(seq: int, epoch: int, start: float) -> ingest_pb2.StreamActionsRequest:
        return ingest_pb2.StreamActionsRequest(sequence=seq, actions=batch(pid, 3, start),
                                               producer=ingest_pb2.ProducerKey(producer_id=prod, epoch=epoch))

    async def stream(requests):
        async def gen():
            for r in requests:
                yield r
        return {r.sequence: r async for r in stub.StreamActions(gen())}

    first = await stream([req(1, 1, 0), req(2, 1, 10)])
    assert [(first[s].accepted_count, first[s].duplicate) for s in (1, 2)] == [(3, False), (3, False)]
    # A reconnect resends both (one unacknowledged in the client's view) and a new one.
    second = await stream([req(1, 1, 0), req(2, 1, 10), req(3, 1, 20)])
    assert [second[s].duplicate for s in (1, 2, 3)] == [True, True, False]
    await stub.RecordActions(keyed(batch(pid, 1, 99), prod, 1, epoch=2))
    third = await stream([req(4, 1, 30)])
    assert third[4].error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert await stored(db, pid) == 10


async def test_a_bad_producer_key_is_invalid_argument(stub, db):
    pid = player()
    for bad in ("", "spaces are not allowed", "x" * 65, "é", "a\\b"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RecordActions(keyed(batch(pid, 1), bad, 1))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(field_violations(status_of(err.value))) == ["producer.producer_id"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RecordActions(keyed(batch(pid, 1), producer(), 1, epoch=2**63))
    assert list(field_violations(status_of(err.value))) == ["producer.epoch"]
    assert await stored(db, pid) == 0

