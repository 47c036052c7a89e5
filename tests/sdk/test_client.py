"""banhammer-client against the real suite through Envoy with authentication on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import grpc
import psycopg
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc, session_pb2, session_pb2_grpc
from banhammer_client import Client
from tests.harness import check_health, free_port, wait_until
from tests.harness.paths import REPO
from tests.harness.processes import ManagedProcess


async def eventually(condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (a deadline, not a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _admin(suite):
    return ban_pb2_grpc.BanServiceStub(grpc.insecure_channel(suite.addr))


def _ban(stub, subject: str) -> None:
    stub.Ban(ban_pb2.BanRequest(subject=subject, reason="wallhack", permanent=True,
                                admin_source=ban_pb2.AdminSource(admin="gm:sdk")), timeout=10)


def _unban(stub, subject: str) -> None:
    stub.Unban(ban_pb2.UnbanRequest(subject=subject, unbanned_by="gm:sdk", reason="appeal"), timeout=10)


def _service_token(suite, subject: str) -> str:
    with grpc.insecure_channel(suite.addr) as ch:
        return session_pb2_grpc.SessionServiceStub(ch).CreateSession(
            session_pb2.CreateSessionRequest(subject=subject, role="service"), timeout=10).token


async def test_ban_and_unban_reach_a_connected_cache(suite, gateway, gateway_tokens):
    player = f"sdk-{uuid.uuid4().hex[:8]}"
    admin = _admin(suite)
    async with await Client.connect(gateway.addr, token=gateway_tokens["service"]) as client:
        assert client.bans.synced
        assert await client.is_banned(player) is False  # a miss: fetched with CheckBans, then cached
        assert client.bans.cached(player) is False
        _ban(admin, player)
        await eventually(lambda: client.bans.cached(player) is True, what="the ban in the cache")
        _unban(admin, player)
        await eventually(lambda: client.bans.cached(player) is False, what="the unban in the cache")


async def test_concurrent_misses_share_one_check(suite, gateway, gateway_tokens):
    players = [f"sdk-many-{uuid.uuid4().hex[:8]}-{i}" for i in range(1500)]
    _ban(_admin(suite), players[7])
    async with await Client.connect(gateway.addr, token=gateway_tokens["service"]) as client:
        calls = 0
        check = client.bans.check

        async def counted(subjects):
            nonlocal calls
            calls += 1
            return await check(subjects)

        client.bans.check = counted
        answers = await asyncio.gather(*(client.is_banned(p) for p in players))
        assert calls == 2  # 1,500 misses of one turn: CheckBans calls of at most 1,000
        assert [i for i, banned in enumerate(answers) if banned] == [7]


async def test_reconnect_after_missed_changes_resynchronises(suite, envoy_factory, gateway_tokens):
    gw = envoy_factory({t: suite.addr for t in ("ingest", "query", "session", "energy")})
    kept, banned_meanwhile = f"sdk-kept-{uuid.uuid4().hex[:8]}", f"sdk-missed-{uuid.uuid4().hex[:8]}"
    admin = _admin(suite)
    _ban(admin, kept)
    async with await Client.connect(gw.addr, token=gateway_tokens["service"]) as client:
        assert await client.is_banned(kept) and await client.is_banned(banned_meanwhile) is False
        gw.stop()  # the gateway goes away: the watch breaks
        await eventually(lambda: not client.bans.synced, what="the watch to notice")
        _unban(admin, kept)
        _ban(admin, banned_meanwhile)
        gw.start()
        await eventually(lambda: client.bans.synced, 30, "the watch to resume")
        assert client.bans.cached(kept) is False and client.bans.cached(banned_meanwhile) is True


async def test_a_caller_without_valid_credentials_is_refused(gateway):
    for token in (None, "forged-token-0000000000000000000000000000"):
        client = await Client.connect(gateway.addr, token=token, watch_bans=False)
        try:
            with pytest.raises(grpc.RpcError) as err:
                await client.check_bans(["anyone"])
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await client.close()


async def test_a_revoked_sessions_watch_ends(suite, gateway):
    token = _service_token(suite, f"game-{uuid.uuid4().hex[:8]}")
    async with await Client.connect(gateway.addr, token=token) as client:
        with grpc.insecure_channel(suite.addr) as ch:
            assert session_pb2_grpc.SessionServiceStub(ch).RevokeSession(
                session_pb2.RevokeSessionRequest(token=token), timeout=10).revoked
        await eventually(lambda: not client.bans.synced, what="the revoked stream to end")
        with pytest.raises(grpc.RpcError) as err:
            await client.is_banned("anyone-else")
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _stored(suite_env, player: str) -> tuple[int, int]:
    """(rows, distinct event ids) of ``player``'s stored actions."""
    with psycopg.connect(suite_env["TIMESCALEDB_URL"]) as conn:
        return conn.execute("SELECT count(*), count(DISTINCT event_id) FROM player_actions_ts WHERE player_id = %s",
                            (player,)).fetchone()


async def test_action_stream_through_a_postgresql_restart_loses_and_doubles_nothing(
        suite, suite_env, gateway, gateway_tokens, pg_server):
    player = f"sdk-actions-{uuid.uuid4().hex[:8]}"
    async with await Client.connect(gateway.addr, token=gateway_tokens["service"], watch_bans=False) as client:
        stream = client.action_stream(producer_id=f"test/{player}", batch_size=50, linger=0.01)
        for i in range(200):
            await stream.send(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i)))
        first = await stream.flush(30)
        assert (first.accepted, first.unacknowledged) == (200, 0)
        # Stopped and started from this thread: pytest-postgresql forks with a preexec_fn, which
        # is unsafe from another thread while gRPC's threads run (the child can crash). The loop
        # only pauses for the stop and the start; it runs, and sends, through the outage between.
        pg_server.stop()
        try:
            for i in range(200, 400):
                await stream.send(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i)))
            await eventually(lambda: stream.report().reconnects > 0, 30, "the outage to reach the stream")
        finally:
            pg_server.start()
        report = await stream.flush(60)
        assert report.unacknowledged == 0 and report.rejected == 0, report
        assert report.accepted + report.duplicates == 400
    assert _stored(suite_env, player) == (400, 400)


@pytest.fixture
def own_ingest(suite_env, tmp_path):
    """An ingest process of its own (on the suite's migrated database), to restart in a test."""
    port = free_port()
    env = {**os.environ, **suite_env, "GRPC_PORT": str(port), "INGEST_MIGRATE_ON_START": "false",
           "OTEL_SDK_DISABLED": "true"}
    proc = ManagedProcess("ingest", [sys.executable, "-m", "services.ingest"], tmp_path / "ingest.log", env=env, cwd=REPO)
    addr = f"127.0.0.1:{port}"

    def start() -> None:
        proc.start()
        wait_until(lambda: check_health(addr, "banhammer.ingest.v1.IngestService", timeout=1) == "SERVING",
                   60, "ingest SERVING", proc)
    start()
    yield addr, proc, start
    proc.stop()


async def test_action_stream_through_an_ingest_restart_loses_and_doubles_nothing(
        suite, suite_env, envoy_factory, gateway_tokens, own_ingest):
    addr, proc, start = own_ingest
    gw = envoy_factory({"ingest": addr, "query": suite.addr, "session": suite.addr, "energy": suite.addr})
    wait_until(lambda: check_health(gw.addr, "", metadata=(("x-banhammer-service", "ingest"),)) == "SERVING",
               30, "ingest SERVING through Envoy", gw.proc)
    player = f"sdk-restart-{uuid.uuid4().hex[:8]}"
    async with await Client.connect(gw.addr, token=gateway_tokens["service"], watch_bans=False) as client:
        stream = client.action_stream(producer_id=f"test/{player}", batch_size=50, linger=0.01)
        for i in range(200):
            await stream.send(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i)))
        assert (await stream.flush(30)).unacknowledged == 0
        await asyncio.to_thread(proc.stop, 10, signal.SIGKILL)  # no goodbye: batches in flight are lost
        for i in range(200, 400):
            await stream.send(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i)))
        await eventually(lambda: stream.report().reconnects > 0, 30, "the stream to notice")
        await asyncio.to_thread(start)
        report = await stream.flush(60)
        assert report.unacknowledged == 0 and report.rejected == 0, report
        assert report.accepted + report.duplicates == 400
    assert _stored(suite_env, player) == (400, 400)
