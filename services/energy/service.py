"""The energy service as the runtime sees it: config, PostgreSQL + InfluxDB, servicers."""

import asyncio
import urllib.request

import grpc

from services.runtime import Service, ServiceSpec
from services.runtime.postgres import LazyPool

from . import servicer
from .config import EnergyConfig


class Energy(Service):
    def __init__(self, conf: EnergyConfig) -> None:
        self.conf = conf
        self.db = LazyPool(conf.database_url, max_size=conf.pool_size)

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def check(self) -> None:
        await self.db.ping()
        await asyncio.to_thread(self._ping_influx)

    def _ping_influx(self) -> None:
        with urllib.request.urlopen(self.conf.influxdb_url.rstrip("/") + "/ping", timeout=2) as response:
            if response.status != 204:
                raise ConnectionError(f"InfluxDB /ping answered {response.status}")

    async def close(self) -> None:
        await self.db.close()


SPEC = ServiceSpec("energy", EnergyConfig, Energy, default_port=50054)
