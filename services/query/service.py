"""The query service as the runtime sees it: config, read-only store, servicers."""

import grpc

from services.runtime import Service, ServiceSpec
from services.runtime.postgres import LazyPool

from . import servicer
from .config import QueryConfig


class Query(Service):
    def __init__(self, conf: QueryConfig) -> None:
        self.conf = conf
        self.db = LazyPool(conf.database_url, max_size=conf.pool_size,
                           statement_timeout_ms=conf.statement_timeout_ms, read_only=True)

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def check(self) -> None:
        await self.db.ping()

    async def close(self) -> None:
        await self.db.close()


SPEC = ServiceSpec("query", QueryConfig, Query, default_port=50052)
