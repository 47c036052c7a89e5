"""The ingest service as the runtime sees it: config, store, rulebook, pipeline, materializer, servicers."""

from __future__ import annotations

import asyncio
import logging

import grpc

from services.runtime import Service, ServiceSpec

from . import rule_servicer, servicer, sqlite_import
from .config import IngestConfig
from .materializer import Materializer
from .pipeline import Pipeline
from .rulebook import Rulebook, file_definitions
from .rules import load_rules
from .store import IngestStore, run_migrations

log = logging.getLogger("banhammer.ingest")


class Ingest(Service):
    def __init__(self, conf: IngestConfig) -> None:
        self.conf = conf
        self.store = IngestStore(conf.database_url, pool_size=conf.pool_size, late_seconds=conf.late_limit_seconds,
                                 copy_min_rows=conf.copy_min_rows)
        # A bad rules file is a configuration error; once the rulebook is open, the database's rules rule.
        self.pipeline = Pipeline(conf, self.store, load_rules(conf.rules_file))
        self.rulebook = Rulebook(self.store, self.pipeline.use_rules)
        self.materializer: Materializer | None = None
        self._maintenance: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = (servicer.register(server, self.pipeline, self.conf)
                              + rule_servicer.register(server, self.rulebook))

    async def start(self) -> None:
        if self.conf.migrate_on_start:
            await run_migrations(self.conf.database_url, self.conf.compress_after_days)
        await self.store.open()  # SchemaBehind keeps the service NOT_SERVING (the runtime logs why)
        await self.rulebook.open(file_definitions(self.conf.rules_file))
        self.pipeline.start()
        self._maintenance = asyncio.create_task(self._maintain(), name="ingest-maintenance")
        if self.conf.materialize:
            self.materializer = Materializer.configured(self.store, self.conf)
            self.materializer.start()

    async def check(self) -> None:
        await self.store.ping()

    async def close(self) -> None:
        await self.rulebook.close()
        if self.materializer is not None:
            await self.materializer.close()
        await self.pipeline.close()
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        await self.store.close()

    async def _maintain(self) -> None:
        while True:
            try:
                await self.store.maintain(self.conf.retention_days, self.conf.producer_retention_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - retried next round; writes create missing partitions anyway
                log.exception("maintenance failed")
            await asyncio.sleep(self.conf.maintenance_seconds)


async def migrate_command(conf: IngestConfig) -> int:
    """``python -m services.ingest migrate``: apply pending schema migrations."""
    applied = await run_migrations(conf.database_url, conf.compress_after_days)
    print(f"ingest schema: applied {applied or 'nothing (up to date)'}")
    return 0


SPEC = ServiceSpec("ingest", IngestConfig, Ingest, default_port=50051, metrics_port=9461,
                   commands={"migrate": migrate_command, "import-sqlite": sqlite_import.import_command})
