"""The query service as the runtime sees it: config, read-only store, domain, servicer."""

import grpc

from services.runtime import Service, ServiceSpec
from services.runtime.postgres import LazyPool

from . import servicer
from .config import QueryConfig
from .players import Players
from .snapshots import Snapshots
from .stats import Stats
from .storage import Storage
from .store import QueryStore
from .violations import Violations


class Query(Service):
    def __init__(self, conf: QueryConfig) -> None:
        self.conf = conf
        self.db = LazyPool(conf.database_url, max_size=conf.pool_size,
                           statement_timeout_ms=conf.statement_timeout_ms, read_only=True)
        self.store = QueryStore(self.db, cap_ms=conf.statement_timeout_ms,
                                acquire_timeout_s=conf.acquire_timeout_ms / 1000)
        self.snapshots = Snapshots(conf.snapshot_fresh_ms / 1000, conf.snapshot_stale_ms / 1000,
                                   compute_timeout=conf.snapshot_timeout_ms / 1000)
        self.stats = Stats(self.store, self.snapshots)
        self.players = Players(self.store)
        self.violations = Violations(self.store)
        self.storage = Storage(self.store)

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def start(self) -> None:
        await self.db.open()

    async def check(self) -> None:
        await self.store.check()

    async def close(self) -> None:
        await self.snapshots.close()
        await self.db.close()


SPEC = ServiceSpec("query", QueryConfig, Query, default_port=50052, metrics_port=9462)
