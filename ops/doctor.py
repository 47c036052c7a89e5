"""``python -m ops doctor``: one line per check of each store, OK or FAIL, exit 1 when any fails.

PostgreSQL (ingest, energy): reachable and its version, extensions, migrations applied. Redis:
reachable, persistence (AOF, which the session service's WAITAOF needs), eviction policy. InfluxDB:
reachable, the database and its retention policy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.energy.influx.client import RETENTION_POLICY
from services.energy.store.migrate import MIGRATIONS as ENERGY_MIGRATIONS
from services.ingest.store.migrate import MIGRATIONS as INGEST_MIGRATIONS
from services.runtime.migrations import MigrationError, Migrations

from . import influx, pg, rdb
from .config import OpsConfig

#: What "cannot reach or talk to the store" looks like; ValueError: a malformed URL.
UNREACHABLE = (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Check:
    store: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.store:<16} {self.detail}"


def _reachable(store: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(store, True, f"reachable, {probe()}")
    except UNREACHABLE + (rdb.redis.RedisError,) as exc:
        return Check(store, False, f"unreachable: {' '.join(str(exc).split()) or type(exc).__name__}")


def _extensions(store: str, db: pg.DatabaseInfo) -> Check:
    found = [f"{name} {db.extensions[name]}" if name in db.extensions else f"{name} absent"
             for name in pg.WATCHED_EXTENSIONS]
    mode = "TimescaleDB" if "timescaledb" in db.extensions else "plain PostgreSQL mode"
    return Check(store, True, f"extensions: {', '.join(found)} ({mode})")


def _schema(store: str, migrations: Migrations):
    """The check that every migration is applied, each from the file as it is now (the runtime's runner)."""

    async def check(url: str) -> Check:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await migrations.check(conn)
        except MigrationError as exc:
            return Check(store, False, f"migrations: {exc}")
        finally:
            await conn.close()
        return Check(store, True, f"migrations: all {migrations.latest} applied")

    return check


def _postgres(store: str, url: str, schema) -> list[Check]:
    found: list[pg.DatabaseInfo] = []

    def probe() -> str:
        found.append(asyncio.run(pg.info(url)))
        return f"PostgreSQL {found[0].version}"

    checks = [_reachable(store, probe)]
    if found:
        checks += [_extensions(store, found[0]), asyncio.run(schema(url))]
    return checks


def _redis(url: str) -> list[Check]:
    found: list[dict] = []

    def probe() -> str:
        found.append(rdb.client(url).info())
        return f"Redis {found[0]['redis_version']}"

    checks = [_reachable("redis", probe)]
    if found:
        config = rdb.client(url).config_get("appendonly") | rdb.client(url).config_get("maxmemory-policy")
        aof = config.get("appendonly") == "yes"
        checks.append(Check("redis", aof, "persistence: AOF on" if aof else
                            "persistence: AOF off (the session service needs it: appendonly yes)"))
        policy = config.get("maxmemory-policy", "")
        safe = rdb.eviction_safe(policy)
        checks.append(Check("redis", safe, f"eviction policy: {policy}" + (
            "" if safe else " would evict sessions and bans: set maxmemory-policy noeviction (or volatile-lru)")))
    return checks


def _influx(conf: OpsConfig) -> list[Check]:
    client = influx.Influx(conf.influxdb_url, conf.influxdb_username, conf.influxdb_password)
    checks = [_reachable("influxdb", lambda: f"InfluxDB {client.ping()}")]
    if not checks[0].ok:
        return checks
    db = conf.influxdb_database
    # The energy service creates the database and its policy with the first reading it writes: before
    # that their absence is expected; readings kept under another policy (e.g. autogen, kept forever) are not.
    if db not in client.databases():
        return checks + [Check("influxdb", True, f"database {db!r} not created yet (the energy service creates it, "
                                                 f"with retention policy {RETENTION_POLICY}, on its first reading)")]
    policies = client.retention_policies(db)
    if RETENTION_POLICY not in policies:
        if not client.query("SHOW MEASUREMENTS LIMIT 1", db):
            return checks + [Check("influxdb", True, f"database {db!r} holds no readings yet (retention policy "
                                                     f"{RETENTION_POLICY} is created with the first)")]
        return checks + [Check("influxdb", False, f"database {db!r} holds readings but has no retention policy "
                                                  f"{RETENTION_POLICY}: they are kept under "
                                                  f"{', '.join(sorted(policies)) or 'no policy'} instead")]
    duration, default = policies[RETENTION_POLICY]
    return checks + [Check("influxdb", True, f"database {db!r}, retention policy {RETENTION_POLICY} {duration}"
                           + (" (default)" if default else ""))]


def run(conf: OpsConfig, stream=None) -> int:
    stream = stream or sys.stdout
    stores = [lambda: _postgres("ingest database", conf.ingest_database_url,
                                _schema("ingest database", INGEST_MIGRATIONS)),
              lambda: _postgres("energy database", conf.energy_database_url,
                                _schema("energy database", ENERGY_MIGRATIONS)),
              lambda: _redis(conf.redis_url), lambda: _influx(conf)]
    checks: list[Check] = []
    for store in stores:  # printed store by store: a slow or hanging store shows where it is
        for check in store():
            print(check.line(), file=stream, flush=True)
            checks.append(check)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed" if failed else f"all {len(checks)} checks passed",
          file=stream)
    return 1 if failed else 0
