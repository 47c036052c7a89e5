"""PostgreSQL stopped mid-stream and restarted: the client resends unacknowledged batches with the
same event ids; no acknowledged action is lost and none is stored twice."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import grpc

from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from services.runtime.server import start_runtime
from tests.harness import wait_serving

from .conftest import ingest_env, player
from .helpers import action, folded

BATCHES, SIZE = 30, 200


async def stream_once(stub, pending: dict[int, ingest_pb2.StreamActionsRequest], acked: set[int],
                      pause_after: int | None = None, resume: asyncio.Event | None = None,
                      on_ack=None) -> grpc.StatusCode | None:
    """One stream: send every pending batch, collect acks; returns the stream's failure code, if any."""
    call = stub.StreamActions()

    async def write() -> None:
        try:
            for n, seq in enumerate(sorted(pending), 1):
                await call.write(pending[seq])
                if pause_after is not None and n == pause_after:
                    await resume.wait()  # the rest goes out while PostgreSQL is down
            await call.done_writing()
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass  # the call already ended; the reader reports why

    writer = asyncio.create_task(write())
    try:
        async for ack in call:
            if ack.HasField("error"):
                continue  # RESOURCE_EXHAUSTED: resend on the next round
            acked.add(ack.sequence)
            pending.pop(ack.sequence, None)
            if on_ack is not None:
                on_ack(len(acked))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return None


async def test_postgres_killed_mid_stream(pg_server, migrated_dsn):
    runtime = await start_runtime(["ingest"], environ=ingest_env(migrated_dsn, INGEST_POOL_SIZE="3"))
    addr = f"127.0.0.1:{runtime.port}"
    pid = player("restart")
    pending = {seq: ingest_pb2.StreamActionsRequest(
        sequence=seq, actions=[action(pid, "kill", float(i), event_id=f"{seq}:{i}") for i in range(SIZE)])
        for seq in range(1, BATCHES + 1)}
    acked: set[int] = set()
    try:
        await wait_serving(addr, "banhammer.ingest.v1.IngestService", timeout=30)
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            enough_acks, down = asyncio.Event(), asyncio.Event()

            async def kill_when_acked() -> None:
                await enough_acks.wait()
                await asyncio.to_thread(pg_server.stop)
                down.set()

            killer = asyncio.create_task(kill_when_acked())
            failure = await stream_once(stub, pending, acked, pause_after=10, resume=down,
                                        on_ack=lambda n: n >= 3 and enough_acks.set())
            await killer
            acked_before_outage = set(acked)
            assert failure is not None, "the stream should have failed while PostgreSQL was down"
            assert pending, "some batches must have been left unacknowledged by the outage"
            await asyncio.to_thread(pg_server.start)

            deadline = time.monotonic() + 60
            while pending:
                assert time.monotonic() < deadline, f"batches never acknowledged: {sorted(pending)}"
                if await stream_once(stub, pending, acked) is not None:
                    await asyncio.sleep(0.2)  # retry back-off while the pool reconnects
    finally:
        if not pg_server.running:
            await asyncio.to_thread(pg_server.start)
        await runtime.stop()

    assert acked == set(range(1, BATCHES + 1)) and len(acked_before_outage) >= 3
    conn = await asyncpg.connect(migrated_dsn)
    try:
        total, distinct = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT event_id) FROM player_actions_ts WHERE player_id = $1", pid)
        assert (total, distinct) == (BATCHES * SIZE, BATCHES * SIZE)
        stored_batches = {int(r["b"]) for r in await conn.fetch(
            "SELECT DISTINCT split_part(event_id, ':', 1) AS b FROM player_actions_ts WHERE player_id = $1", pid)}
        assert acked_before_outage <= stored_batches
        await folded(conn)
        assert await conn.fetchval("SELECT sum(actions) FROM player_hours WHERE player_id = $1", pid) == total
    finally:
        await conn.close()
