"""The energy service as the runtime sees it: config, PostgreSQL + InfluxDB + spool, servicers."""

from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg
import grpc

from services.runtime import Service, ServiceSpec
from services.runtime.migrations import MigrationError
from services.runtime.postgres import LazyPool

from . import metrics, servicer
from .alerts import Alerts
from .buildings import Buildings
from .config import EnergyConfig
from .dashboard import Dashboard
from .forecasts import Forecasts
from .influx.client import InfluxClient
from .influx.spool import Spool
from .influx.writer import ReadingWriter
from .passwords import Passwords
from .readings import SensorWrites
from .sensor_query import SensorQueries
from .session_client import SessionClient
from .store.migrate import MIGRATIONS
from .store.alerts import AlertStore
from .store.buildings import BuildingStore
from .store.usage import UsageStore
from .store.users import UserStore
from .usage import Usage
from .users import Users

log = logging.getLogger("banhammer.energy")


class Energy(Service):
    def __init__(self, conf: EnergyConfig) -> None:
        self.conf = conf
        self.db = LazyPool(conf.database_url, max_size=conf.pool_size)
        self.influx = InfluxClient(conf.influxdb_url, conf.influxdb_database, username=conf.influxdb_username,
                                   password=conf.influxdb_password, timeout=conf.influxdb_timeout_seconds,
                                   retention=conf.influxdb_retention)
        self.sessions = SessionClient(conf.session_addr)
        self.writer = ReadingWriter(self.influx, Spool(conf.spool_dir, conf.spool_max_bytes),
                                    direct_timeout=conf.influxdb_timeout_seconds)
        spool = self.writer.spool
        metrics.follow_spool(lambda: spool.pending_bytes, lambda: spool.pending_batches, spool.oldest_age)
        self.building_store = BuildingStore(self.db)
        alert_store = AlertStore(self.db)
        usage_store = UsageStore(self.db)
        self.passwords = Passwords(conf.argon2_time_cost, conf.argon2_memory_kib, conf.argon2_parallelism,
                                   conf.argon2_max_concurrent)
        self.users = Users(UserStore(self.db), self.passwords, self.sessions, conf.session_ttl_seconds)
        self.buildings = Buildings(self.building_store, self.sessions)
        self.usage = Usage(usage_store)
        self.sensor_queries = SensorQueries(self.influx)
        self.alerts = Alerts(alert_store, self.sensor_queries, self.sessions, conf.power_sensor_type)
        self.sensor_writes = SensorWrites(self.writer, self.alerts.written if conf.alert_write_gather_seconds > 0 else None)
        self.forecasts = Forecasts(self.building_store, self.sensor_queries, conf.power_sensor_type,
                                   conf.forecast_min_history_hours)
        self.dashboard = Dashboard(self.building_store, alert_store, usage_store, self.sensor_queries,
                                   self.forecasts, conf.power_sensor_type)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._spool_open = False

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def start(self) -> None:
        # The spool first: acknowledged readings of a previous process are replayed even before
        # PostgreSQL answers.
        if not self._spool_open:
            await self.writer.start()
            self._spool_open = True
        pool = await self.db.open()
        async with pool.acquire() as conn:
            if self.conf.auto_migrate:
                await MIGRATIONS.upgrade(conn)
            else:  # behind or edited: not served (the reason is logged while health stays NOT_SERVING)
                await MIGRATIONS.check(conn)
        if self.conf.alert_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self.alerts.run(self.conf.alert_interval_seconds, self._stop),
                                                   name="energy-alerts"))
        if self.conf.alert_write_gather_seconds > 0:
            self._tasks.append(asyncio.create_task(
                self.alerts.run_on_write(self.conf.alert_write_gather_seconds, self._stop), name="energy-alerts-on-write"))

    async def check(self) -> None:
        # PostgreSQL is required. InfluxDB being down is a degradation, not an outage: writes go to the
        # spool and the dashboard reports it, so health stays SERVING (logged by the writer).
        await self.db.ping()

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._spool_open:
            await self.writer.close()
        await self.influx.close()
        await self.sessions.close()
        await self.db.close()


async def migrate_command(conf: EnergyConfig) -> int:
    try:
        conn = await asyncpg.connect(conf.database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"migrate: cannot reach the energy database: {exc}", file=sys.stderr)
        return 1
    try:
        applied = await MIGRATIONS.upgrade(conn)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(f"applied {len(applied)} migration(s): {applied}" if applied else "schema up to date")
    return 0


SPEC = ServiceSpec("energy", EnergyConfig, Energy, default_port=50054, metrics_port=9464, commands={"migrate": migrate_command})
