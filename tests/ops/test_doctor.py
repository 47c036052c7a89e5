"""`python -m ops doctor`: one line per check, OK on healthy stores; a stopped store, an allkeys-*
Redis eviction policy, Redis without AOF, a schema behind and a missing InfluxDB database each FAIL with a
clear line and exit 1."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis

from services.energy.store.migrate import MIGRATIONS as ENERGY_MIGRATIONS
from services.ingest.store import run_migrations

from .conftest import ops

RETENTION = 'CREATE RETENTION POLICY "energy_30d" ON "energy_data" DURATION 30d REPLICATION 1 SHARD DURATION 1d DEFAULT'


@pytest.fixture(scope="module")
def healthy(target):
    """The target set, migrated and set up the way the services leave it."""
    import asyncpg

    async def migrate() -> None:
        await run_migrations(target.ingest, 7)
        conn = await asyncpg.connect(target.energy)
        try:
            await ENERGY_MIGRATIONS.upgrade(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    target.influx.query('CREATE DATABASE "energy_data"')
    target.influx.query(RETENTION)
    return target


def _lines(out: str) -> dict[str, list[str]]:
    checks: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith(("OK  ", "FAIL")):
            checks.setdefault(line[5:21].strip(), []).append(line)
    return checks


def test_healthy_stores_pass_every_check(healthy):
    done = ops(healthy.env(), "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = _lines(done.stdout)
    assert set(checks) == {"ingest database", "energy database", "redis", "influxdb"}
    assert all(line.startswith("OK  ") for lines in checks.values() for line in lines), done.stdout
    ingest = " ".join(checks["ingest database"])
    assert "reachable, PostgreSQL 15" in ingest
    # The ingest migrations create hll where the server has it (Debian's postgresql-15-hll, installed by CI).
    assert re.search(r"extensions: timescaledb absent, hll (absent|\d[\d.]*) \(plain PostgreSQL mode\)", ingest), ingest
    assert "migrations: all" in ingest
    assert "persistence: AOF on" in " ".join(checks["redis"]) and "eviction policy: noeviction" in " ".join(checks["redis"])
    assert "retention policy energy_30d 720h0m0s (default)" in " ".join(checks["influxdb"])
    assert done.stdout.strip().splitlines()[-1] == f"all {sum(map(len, checks.values()))} checks passed"


def test_a_stopped_store_fails(healthy):
    healthy.redis.stop()
    try:
        done = ops(healthy.env(), "doctor")
    finally:
        healthy.redis.start()
    assert done.returncode == 1, done.stdout + done.stderr
    checks = _lines(done.stdout)
    assert len(checks["redis"]) == 1 and checks["redis"][0].startswith("FAIL redis            unreachable:")
    assert all(line.startswith("OK") for store in ("ingest database", "energy database", "influxdb")
               for line in checks[store])
    assert "Traceback" not in done.stdout + done.stderr


def test_volatile_eviction_is_allowed(healthy):
    """Only cache, leases and limits carry TTLs (services/session/KEYS.md): volatile-* evicts nothing else."""
    r = redis.Redis.from_url(healthy.redis.url)
    r.config_set("maxmemory-policy", "volatile-lru")
    try:
        done = ops(healthy.env(), "doctor")
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    assert done.returncode == 0, done.stdout
    assert "OK   redis            eviction policy: volatile-lru" in done.stdout


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-random"])
def test_an_evicting_redis_fails(healthy, policy):
    r = redis.Redis.from_url(healthy.redis.url)
    r.config_set("maxmemory-policy", policy)
    try:
        done = ops(healthy.env(), "doctor")
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == [f"FAIL redis            eviction policy: {policy} would evict sessions and bans: "
                      "set maxmemory-policy noeviction (or volatile-lru)"], done.stdout


def test_redis_without_aof_fails(healthy):
    r = redis.Redis.from_url(healthy.redis.url)
    r.config_set("appendonly", "no")
    try:
        done = ops(healthy.env(), "doctor")
    finally:
        r.config_set("appendonly", "yes")
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("FAIL")] == [
        "FAIL redis            persistence: AOF off (the session service needs it: appendonly yes)"]


def test_a_schema_behind_fails(healthy, new_database):
    empty = new_database("ops_unmigrated")
    done = ops(healthy.env(ENERGY_DATABASE_URL=empty), "doctor")
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("FAIL")] == [
        "FAIL energy database  migrations: the database has no schema yet: run the service's migrate command"]


def test_readings_without_the_retention_policy_fail(healthy):
    """Before the first reading no database (or policy) is expected; readings kept forever are not."""
    done = ops(healthy.env(INFLUXDB_DATABASE="fresh"), "doctor")
    assert done.returncode == 0, done.stdout
    assert "OK   influxdb         database 'fresh' not created yet" in done.stdout
    healthy.influx.query('CREATE DATABASE "forever"')
    done = ops(healthy.env(INFLUXDB_DATABASE="forever"), "doctor")
    assert done.returncode == 0 and "database 'forever' holds no readings yet" in done.stdout, done.stdout
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{healthy.influx.url}/write?db=forever", data=b"sensor_readings v=1",
                                                  method="POST"), timeout=10).read()
    done = ops(healthy.env(INFLUXDB_DATABASE="forever"), "doctor")
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("FAIL")] == [
        "FAIL influxdb         database 'forever' holds readings but has no retention policy energy_30d: "
        "they are kept under autogen instead"]
