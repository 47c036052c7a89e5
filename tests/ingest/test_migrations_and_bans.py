"""Schema migrations (command, idempotency, startup check), partition retention, and a rule's ban
reaching the real session service."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc

from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from services.ingest.store import migrate, partitions
from services.runtime.server import start_runtime
from tests.harness import check_health, free_port, wait_serving
from tests.harness.paths import REPO

from .conftest import ingest_env, player
from .helpers import action, eventually

SERVICE = "banhammer.ingest.v1.IngestService"


async def run_migrate_command(dsn: str) -> tuple[int, str]:
    env = {**os.environ, "TIMESCALEDB_URL": dsn, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.ingest", "migrate", cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


async def test_refuses_to_serve_until_migrated(new_database, caplog):
    dsn = new_database("unmigrated")
    caplog.set_level(logging.WARNING, logger="banhammer.runtime")
    runtime = await start_runtime(["ingest"], environ=ingest_env(dsn))
    addr = f"127.0.0.1:{runtime.port}"
    try:
        await eventually(lambda: asyncio.sleep(0, any("schema is at version 0" in str(getattr(r, "reason", ""))
                                                          for r in caplog.records)), "the schema log line")
        assert await asyncio.to_thread(check_health, addr, SERVICE) == "NOT_SERVING"
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            try:
                await stub.RecordAction(ingest_pb2.RecordActionRequest(action=action(player())))
                raise AssertionError("accepted an action without a schema")
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE

        code, out = await run_migrate_command(dsn)
        assert code == 0 and f"applied {[m.version for m in migrate.MIGRATIONS.discover()]}" in out, out
        await wait_serving(addr, SERVICE, timeout=20)  # the runtime retried start() by itself
        code, out = await run_migrate_command(dsn)
        assert code == 0 and "nothing" in out, out
    finally:
        await runtime.stop()
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in rows] == [(m.version, m.pick("plain")[0]) for m in migrate.MIGRATIONS.discover()]
        assert [r["name"] for r in rows][:4] == ["base", "plain", "plain", "append_only"]
        assert await migrate.schema_version(conn) == migrate.LATEST
        # Daily partitions exist for every day an accepted event can fall on.
        today = datetime.now(timezone.utc)
        names = {r["relname"] for r in await conn.fetch("SELECT relname FROM pg_class WHERE relname LIKE 'player_actions_ts_p%'")}
        for day in (today - timedelta(days=1), today, today + timedelta(days=2)):
            assert f"player_actions_ts_p{day:%Y%m%d}" in names
        # Rollup partitions leave room for in-place (HOT) updates; raw partitions do not need it.
        options = {r["relname"]: r["reloptions"] for r in await conn.fetch(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])",
            [f"{t}_p{today:%Y%m%d}" for t in partitions.PARTITIONED])}
        assert options == {f"player_actions_ts_p{today:%Y%m%d}": None,
                           f"action_stats_1min_p{today:%Y%m%d}": ["fillfactor=70"],
                           f"action_stats_1h_p{today:%Y%m%d}": ["fillfactor=70"]}
    finally:
        await conn.close()


async def test_retention_drops_old_partitions_and_event_ids(migrated_dsn, db):
    old_day = datetime.now(timezone.utc) - timedelta(days=95)
    await partitions.ensure_days(db, [old_day.date()])
    await partitions.ensure_window(db, 86400)
    await db.execute("INSERT INTO player_actions_ts (time, player_id, action_type, value) VALUES ($1, 'old', 'k', 1)", old_day)
    await db.execute("INSERT INTO action_event_ids VALUES ('old', 'e-old', $1), ('new', 'e-new', now())", old_day)
    dropped = await partitions.expire(db, 90)
    assert set(dropped) == {f"{t}_p{old_day:%Y%m%d}" for t in partitions.PARTITIONED}
    assert await db.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id = 'old'") == 0
    assert await partitions.expire_event_ids(db, 90) == 1
    assert await db.fetchval("SELECT count(*) FROM action_event_ids WHERE player_id IN ('old', 'new')") == 1
    # Recent partitions stay.
    assert await db.fetchval("SELECT to_regclass($1) IS NOT NULL", f"player_actions_ts_p{datetime.now(timezone.utc):%Y%m%d}")


async def test_rule_ban_reaches_the_session_service(migrated_dsn, db, redis_url):
    env = ingest_env(migrated_dsn, REDIS_URL=redis_url, REDIS_WAITAOF="false")
    env["SESSION_SERVICE_ADDR"] = f"127.0.0.1:{env['GRPC_PORT']}"  # session hosted in the same runtime
    runtime = await start_runtime(["session", "ingest"], environ=env)
    addr = f"127.0.0.1:{runtime.port}"
    cheat, fair = player(), player()
    try:
        await wait_serving(addr, "", timeout=30)
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            bans = ban_pb2_grpc.BanServiceStub(channel)
            await stub.RecordActions(ingest_pb2.RecordActionsRequest(
                actions=[action(cheat, "t_ban", 11.0), action(fair, "t_ban", 10.0)]))

            async def banned():
                return (await bans.IsBanned(ban_pb2.IsBannedRequest(subject=cheat))).banned

            await eventually(banned, "the ban at the session service", timeout=5, interval=0.02)
            ban = (await bans.IsBanned(ban_pb2.IsBannedRequest(subject=cheat))).ban
            assert not (await bans.IsBanned(ban_pb2.IsBannedRequest(subject=fair))).banned
        [v] = await db.fetch("SELECT * FROM violations_ts WHERE player_id = $1", cheat)
        assert v["rule"] == "t_ban" and v["ban_requested"]
        assert ban.WhichOneof("source") == "rule_source"
        assert ban.rule_source.rule == "t_ban" and list(ban.rule_source.violation_ids) == [str(v["id"])]
        assert ban.rule_source.service == "ingest" and "t_ban" in ban.reason
        expire = ban.expire_time.ToDatetime(tzinfo=timezone.utc)
        assert abs((expire - v["detected_at"]).total_seconds() - 3600) < 5
        summary = await eventually(lambda: db.fetchrow(
            "SELECT * FROM player_summary WHERE player_id = $1 AND banned_until IS NOT NULL", cheat), "banned_until")
        assert abs((summary["banned_until"] - expire).total_seconds()) < 1
        assert json.loads(v["evidence"])["value"] == 11
    finally:
        await runtime.stop()


async def test_a_ban_outlives_a_session_service_outage(migrated_dsn, db, redis_url):
    """The session service is down when the rule fires: the ban waits in the outbox (visible, with
    its error) and is delivered once the service is up, exactly once."""
    session_port = free_port()
    env = ingest_env(migrated_dsn, SESSION_SERVICE_ADDR=f"127.0.0.1:{session_port}", INGEST_BAN_RETRY_MAX_SECONDS="0.3",
                     INGEST_BAN_TIMEOUT_SECONDS="0.5")
    ingest = await start_runtime(["ingest"], environ=env)
    session = None
    cheat = player()
    try:
        await wait_serving(f"127.0.0.1:{ingest.port}", SERVICE, timeout=30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ingest.port}") as channel:
            await ingest_pb2_grpc.IngestServiceStub(channel).RecordActions(
                ingest_pb2.RecordActionsRequest(actions=[action(cheat, "t_ban", 11.0)]))
        waiting = await eventually(lambda: db.fetchrow(
            "SELECT * FROM ban_outbox WHERE player_id = $1 AND attempts >= 2", cheat), "retried deliveries")
        assert waiting["last_error"].startswith("UNAVAILABLE") and not waiting["failed"]

        session = await start_runtime(["session"], environ=ingest_env(
            migrated_dsn, GRPC_PORT=str(session_port), REDIS_URL=redis_url, REDIS_WAITAOF="false"))
        await wait_serving(f"127.0.0.1:{session_port}", "banhammer.session.v1.BanService", timeout=30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{session_port}") as channel:
            bans = ban_pb2_grpc.BanServiceStub(channel)

            async def banned():
                return (await bans.IsBanned(ban_pb2.IsBannedRequest(subject=cheat))).banned

            await eventually(banned, "the ban after the outage")
            await eventually(lambda: db.fetchval("SELECT count(*) = 0 FROM ban_outbox WHERE player_id = $1", cheat),
                             "the outbox row acknowledged")
            history = await bans.GetBanHistory(ban_pb2.GetBanHistoryRequest(subject=cheat, page_size=10))
        assert len(history.events) == 1  # redeliveries carry the violation's idempotency key
        assert await db.fetchval("SELECT banned_until IS NOT NULL FROM player_summary WHERE player_id = $1", cheat)
    finally:
        await ingest.stop()
        if session is not None:
            await session.stop()
