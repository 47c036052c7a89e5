"""Redis restarts: bans survive one (AOF), and a Redis outage fails calls fast with UNAVAILABLE
while the service recovers by itself once Redis is back."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis as redis_sync

from banhammer.session.v1 import ban_pb2 as pb
from services.runtime import load
from services.session.config import SessionConfig
from services.session.models import BanSource
from services.session.service import Session
from tests.harness import ManagedProcess, free_port, wait_serving, wait_until

from .helpers import unique


def _pong(port: int) -> bool:
    try:
        return redis_sync.Redis(port=port, socket_connect_timeout=0.5).ping()
    except redis_sync.RedisError:
        return False


@pytest.fixture
def aof_redis(tmp_path):
    """A throwaway redis-server with AOF fsync on every write: (process, port)."""
    port = free_port()
    proc = ManagedProcess("redis-aof", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                        "--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always",
                                        "--save", ""], tmp_path / "redis.log")
    proc.start()
    wait_until(lambda: _pong(port), 15, "redis-aof PING", proc)
    yield proc, port
    proc.stop()


async def test_bans_survive_a_redis_restart(aof_redis):
    proc, port = aof_redis
    svc = Session(load(SessionConfig, {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_TIMEOUT_SECONDS": "1"}))
    try:
        player = unique("aof")
        await svc.bans.ban(player, "speed hack", BanSource(kind="admin", admin="gm:alice"), None, True, "")
        timed = unique("aof-timed")
        await svc.bans.ban(timed, "spam", BanSource(kind="rule", rule="r", violation_ids=("1",)), 3600_000, False, "")
        proc.stop()  # SIGTERM; with --save "" only the AOF holds the data
        assert not _pong(port)
        proc.start()
        wait_until(lambda: _pong(port), 15, "redis-aof PING after restart", proc)
        # Same service object, same (now broken) pooled connections: it reconnects by itself.
        assert (await svc.bans.is_banned(player)).reason == "speed hack"
        assert (await svc.bans.is_banned(timed)).source.violation_ids == ("1",)
        history, _ = await svc.bans.history(player, 0, "")
        assert len(history) == 1 and history[0].actor == "gm:alice"
    finally:
        await svc.close()


async def test_redis_outage_fails_fast_then_recovers(bans, redis_server, service):
    runtime, _ = service
    player = unique("outage")
    await bans.Ban(pb.BanRequest(subject=player, reason="x", admin_source=pb.AdminSource(admin="gm"), permanent=True))
    redis_server.stop()
    try:
        # Fails fast: UNAVAILABLE within the service's Redis timeout (1 s), long before the caller's
        # deadline would have made it DEADLINE_EXCEEDED.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await bans.IsBanned(pb.IsBannedRequest(subject=player), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "session store unavailable" in err.value.details()  # no redis-py internals leak
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await bans.CheckBans(pb.CheckBansRequest(subjects=[player, "b"]), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        redis_server.start()
    # No restart of the service: the next calls succeed once Redis answers.
    deadline = time.monotonic() + 15
    while True:
        try:
            await bans.IsBanned(pb.IsBannedRequest(subject=player), timeout=5)
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() < deadline, "service did not recover after Redis came back"
            await asyncio.sleep(0.1)
    await bans.Ban(pb.BanRequest(subject=unique("after"), reason="x", admin_source=pb.AdminSource(admin="gm"),
                                 permanent=True))
    await wait_serving(f"127.0.0.1:{runtime.port}", "banhammer.session.v1.BanService", timeout=15)
