"""The ingest service as the runtime sees it: config, store, servicers."""

import grpc

from services.runtime import Service, ServiceSpec
from services.runtime.postgres import LazyPool

from . import servicer
from .config import IngestConfig


class Ingest(Service):
    def __init__(self, conf: IngestConfig) -> None:
        self.conf = conf
        self.db = LazyPool(conf.database_url, max_size=conf.pool_size)

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def check(self) -> None:
        await self.db.ping()

    async def close(self) -> None:
        await self.db.close()


SPEC = ServiceSpec("ingest", IngestConfig, Ingest, default_port=50051)
