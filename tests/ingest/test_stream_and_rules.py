"""StreamActions acks per batch (errors per batch keep the stream open); ListRules/GetRule;
RESOURCE_EXHAUSTED with RetryInfo when the write queue is full."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import code_pb2

from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from services.runtime.server import start_runtime
from tests.harness import wait_serving

from .conftest import ingest_env, player
from .helpers import action, eventually, field_violations, retry_delay, status_of


def batch(seq: int, pid: str, n: int, *, bad: bool = False) -> ingest_pb2.StreamActionsRequest:
    acts = [action(pid, "kill", 1.0, event_id=f"s{seq}-{i}") for i in range(n)]
    if bad:
        acts[-1].value = float("inf")
    return ingest_pb2.StreamActionsRequest(sequence=seq, actions=acts)


async def test_stream_acks_every_batch_and_survives_a_bad_one(stub, db):
    pid = player()
    requests = [batch(1, pid, 10), batch(2, pid, 5, bad=True), batch(3, pid, 7), batch(1, pid, 10), batch(4, pid, 3)]
    acks = {}
    async for ack in stub.StreamActions(iter(requests)):
        acks.setdefault(ack.sequence, []).append(ack)
    assert sorted(acks) == [1, 2, 3, 4]
    err = acks[2][0].error
    assert err.code == code_pb2.INVALID_ARGUMENT and list(field_violations(err)) == ["actions[4].value"]
    assert [(a.accepted_count, a.duplicate_count) for a in acks[1]] in ([(10, 0), (0, 10)], [(0, 10), (10, 0)])
    assert (acks[3][0].accepted_count, acks[4][0].accepted_count) == (7, 3)
    assert not acks[3][0].HasField("error")
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1", pid) == 20


async def test_stream_from_an_async_client_interleaves_acks(stub, db):
    pid = player()
    call = stub.StreamActions()
    for seq in range(1, 21):
        await call.write(batch(seq, pid, 50))
    await call.done_writing()
    acked = [ack.sequence async for ack in call]
    assert sorted(acked) == list(range(1, 21))
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = $1", pid) == 1000


async def test_list_and_get_rules(stub):
    first = await stub.ListRules(ingest_pb2.ListRulesRequest(page_size=3))
    assert [r.name for r in first.rules] == ["t_ban", "t_baseline", "t_impossible"]
    assert first.next_page_token
    rest = await stub.ListRules(ingest_pb2.ListRulesRequest(page_size=3, page_token=first.next_page_token))
    assert [r.name for r in rest.rules] == ["t_max", "t_rate", "t_short"]
    last = await stub.ListRules(ingest_pb2.ListRulesRequest(page_size=3, page_token=rest.next_page_token))
    assert [r.name for r in last.rules] == ["t_sum", "z_sentinel"] and last.next_page_token == ""
    everything = await stub.ListRules(ingest_pb2.ListRulesRequest(include_disabled=True))
    assert "t_disabled" in [r.name for r in everything.rules] and len(everything.rules) == 9

    with pytest.raises(grpc.aio.AioRpcError) as err:  # token bound to include_disabled=false
        await stub.ListRules(ingest_pb2.ListRulesRequest(page_token=first.next_page_token, include_disabled=True))
    assert list(field_violations(status_of(err.value))) == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListRules(ingest_pb2.ListRulesRequest(page_size=501))
    assert list(field_violations(status_of(err.value))) == ["page_size"]

    rule = (await stub.GetRule(ingest_pb2.GetRuleRequest(name="t_ban"))).rule
    assert rule.WhichOneof("condition") == "impossible_value" and rule.impossible_value.max_value == 10
    assert not rule.impossible_value.HasField("min_value")
    assert rule.ban.duration.seconds == 3600 and rule.severity == 4
    base = (await stub.GetRule(ingest_pb2.GetRuleRequest(name="t_baseline"))).rule.baseline
    assert (base.percentile, base.baseline_window.seconds, base.multiplier, base.min_population) == (90, 3600, 2, 20)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetRule(ingest_pb2.GetRuleRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def _blocked_on_lock(db, dsn_db: str) -> bool:
    return await db.fetchval(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' "
        "AND application_name = 'banhammer-ingest'", dsn_db)


async def test_full_queue_answers_resource_exhausted_and_drops_nothing(migrated_dsn, db):
    """A table lock holds the first batch in its commit; the next one finds the queue full."""
    runtime = await start_runtime(["ingest"], environ=ingest_env(migrated_dsn, INGEST_QUEUE_MAX_ROWS="10"))
    addr = f"127.0.0.1:{runtime.port}"
    pid = player()
    try:
        await wait_serving(addr, "banhammer.ingest.v1.IngestService", timeout=30)
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            lock = db.transaction()
            await lock.start()
            await db.execute("LOCK TABLE player_actions_ts IN EXCLUSIVE MODE")
            try:
                first = asyncio.ensure_future(stub.RecordActions(ingest_pb2.RecordActionsRequest(
                    actions=[action(pid, "kill", event_id=f"a{i}") for i in range(8)])))
                await eventually(lambda: _blocked_on_lock(db, migrated_dsn.rsplit("/", 1)[1]), "writer blocked")
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.RecordActions(ingest_pb2.RecordActionsRequest(
                        actions=[action(pid, "kill", event_id=f"b{i}") for i in range(5)]))
                call = ingest_pb2.StreamActionsRequest(sequence=9, actions=[action(pid, "kill", event_id="c")] * 5)
                stream_acks = stub.StreamActions(iter([call]))
                stream_ack = await anext(aiter(stream_acks))
            finally:
                await lock.rollback()
            assert (await first).accepted_count == 8
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        delay = retry_delay(status_of(err.value))
        assert delay is not None and 0 < delay <= 5
        assert stream_ack.sequence == 9 and stream_ack.error.code == code_pb2.RESOURCE_EXHAUSTED
        assert retry_delay(stream_ack.error) is not None
        ids = {r["event_id"] for r in await db.fetch("SELECT event_id FROM player_actions_ts WHERE player_id = $1", pid)}
        assert ids == {f"a{i}" for i in range(8)}
    finally:
        await runtime.stop()
