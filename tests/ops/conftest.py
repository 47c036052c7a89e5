"""Ops fixtures: a source set of stores holding data written the way the services write it, and a
fresh, empty target set to restore into (PostgreSQL: fresh databases; Redis and InfluxDB: fresh
servers), all real and throwaway."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from services.energy.store.migrate import MIGRATIONS as ENERGY_MIGRATIONS
from services.ingest.store import partitions, run_migrations
from tests.harness.processes import ManagedProcess, free_port, wait_until
from tests.harness.require import missing
from tests.harness.stores import InfluxServer

from .contents import INFLUX_DB

REPO = Path(__file__).resolve().parents[2]


class Redis:
    """A redis-server of its own (AOF on, as in production), so restore may find it empty."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                             "--dir", str(root), "--appendonly", "yes", "--save", "",
                                             "--daemonize", "no"], root / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> Redis:
        self.proc.start()
        wait_until(self._ping, 20, f"redis PING on {self.port}", self.proc)
        return self

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Stores:
    ingest: str
    energy: str
    redis: Redis
    influx: InfluxServer

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "TIMESCALEDB_URL": self.ingest, "ENERGY_DATABASE_URL": self.energy,
                "REDIS_URL": self.redis.url, "INFLUXDB_URL": self.influx.url, "INFLUXDB_DATABASE": INFLUX_DB,
                "INFLUXDB_BACKUP_ADDR": f"127.0.0.1:{self.influx.rpc_port}", "LOG_LEVEL": "WARNING", **extra}


def ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m ops ...`` as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "ops", *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def _require_tools() -> None:
    for binary, package in (("pg_dump", "postgresql-client-15"), ("pg_restore", "postgresql-client-15"),
                            ("redis-cli", "redis-tools"), ("redis-server", "redis-server"), ("influxd", "influxdb")):
        if not shutil.which(binary):
            missing(f"{binary} not installed: apt-get install {package}")


def _fresh_stores(new_database, root: Path) -> Stores:
    _require_tools()
    influx = InfluxServer(root / "influx", database=INFLUX_DB)
    influx.start()
    influx.query(f'DROP DATABASE "{INFLUX_DB}"')  # fresh: restore (and the energy service) create it
    return Stores(new_database("ops_ingest"), new_database("ops_energy"), Redis(root / "redis").start(), influx)


@pytest.fixture(scope="module")
def source(new_database, tmp_path_factory):
    stores = _fresh_stores(new_database, tmp_path_factory.mktemp("source"))
    try:
        asyncio.run(_fill_postgres(stores))
        _fill_redis(stores.redis.url)
        _fill_influx(stores.influx.url)
        yield stores
    finally:
        stores.redis.stop()
        stores.influx.stop()


@pytest.fixture(scope="module")
def target(new_database, tmp_path_factory):
    stores = _fresh_stores(new_database, tmp_path_factory.mktemp("target"))
    try:
        yield stores
    finally:
        stores.redis.stop()
        stores.influx.stop()


async def _fill_postgres(stores: Stores) -> None:
    await run_migrations(stores.ingest, 7)
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    conn = await asyncpg.connect(stores.ingest)
    try:
        await partitions.ensure_days(conn, [now.date()])
        await conn.executemany(
            "INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(now + dt.timedelta(seconds=i), f"player_{i % 7}", "login" if i % 3 else "purchase", i * 1.5,
              json.dumps({"i": i, "unicode": "żółw"}), f"ev-{i}") for i in range(500)])
        await conn.execute("INSERT INTO player_summary (player_id, first_seen, last_seen, action_count) "
                           "VALUES ('player_1', $1, $1, 72)", now)
        await conn.execute("INSERT INTO violations_ts (player_id, rule, severity, evidence) "
                           "VALUES ('player_1', 'speed', 3, '{\"rate\": 120}')")
    finally:
        await conn.close()
    conn = await asyncpg.connect(stores.energy)
    try:
        await ENERGY_MIGRATIONS.upgrade(conn)
        await conn.execute("INSERT INTO users (username, email, password_hash, role) VALUES "
                           "('alice', 'alice@example.com', '$argon2id$v=19$m=8192,t=2,p=1$c2FsdA$aGFzaA', 'admin')")
        await conn.executemany("INSERT INTO buildings (name, address, total_area, floors) VALUES ($1, $2, $3, $4)",
                               [(f"Building {i}", f"{i} Main St", 1000 + i, 1 + i % 9) for i in range(20)])
    finally:
        await conn.close()


def _fill_redis(url: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    r.set("session:abc", json.dumps({"subject": "player_1", "role": "service"}), ex=3600)
    r.hset("ban:player_2", mapping={"reason": "speed", "until": "infinity"})
    r.zadd("bans:expiry", {"player_2": 1e12, "player_3": 2e12})
    r.rpush("notifications:player_1", *[f"message {i}" for i in range(50)])
    r.sadd("revoked", "s1", "s2")
    other = redis.Redis.from_url(url.rsplit("/", 1)[0] + "/3")
    other.set("cache:overview", b"\x00\x01binary\xff", px=600_000)


def _fill_influx(url: str) -> None:
    def q(text: str) -> None:
        data = urllib.parse.urlencode({"q": text}).encode()
        urllib.request.urlopen(f"{url}/query", data=data, timeout=10).read()

    q(f'CREATE DATABASE "{INFLUX_DB}"')
    q(f'CREATE RETENTION POLICY "energy_30d" ON "{INFLUX_DB}" DURATION 30d REPLICATION 1 SHARD DURATION 1d DEFAULT')
    # The last hour: inside the 30-day retention policy whenever the test runs.
    base = int(dt.datetime.now(dt.timezone.utc).timestamp()) * 10**9 - 3600 * 10**9
    lines = "\n".join(f"sensor_readings,building_id={b},sensor_type=power,floor={b % 3} value={b * 10 + i * 0.5} "
                      f"{base + i * 60 * 10**9}" for b in range(1, 4) for i in range(40))
    req = urllib.request.Request(f"{url}/write?db={INFLUX_DB}&rp=energy_30d&precision=ns", data=lines.encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204
