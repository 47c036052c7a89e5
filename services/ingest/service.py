"""The ingest service as the runtime sees it: config, store, writer, detector, servicers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc

from services.runtime import Service, ServiceSpec, Unavailable

from . import rule_servicer, servicer, sqlite_import
from .actions import BatchKey, Columns, RawAction, Row, TimeWindow, batch_key, validate, validate_columns
from .bans import BanDeliverer, serialized_ban
from .config import IngestConfig
from .detection import DetectionQueue, Detector
from .rulebook import Rulebook, file_definitions
from .materializer import Materializer
from .rules import Rule, load_rules
from .store import IngestStore, run_migrations
from .store.writes import Batch, Outcome, touched
from .writer import Writer

log = logging.getLogger("banhammer.ingest")


class Ingest(Service):
    def __init__(self, conf: IngestConfig) -> None:
        self.conf = conf
        self.rules = load_rules(conf.rules_file)  # a bad rules file is a configuration error
        self.window = TimeWindow.of_seconds(conf.late_limit_seconds, conf.future_limit_seconds)
        self.store = IngestStore(conf.database_url, pool_size=conf.pool_size, late_seconds=conf.late_limit_seconds,
                                 copy_min_rows=conf.copy_min_rows)
        self.bans: BanDeliverer | None = None
        self.writer: Writer | None = None
        self.detector: Detector | None = None
        self._maintenance: asyncio.Task | None = None
        self.rulebook = Rulebook(self.store, self._use_rules)  # the database's rules replace the file's
        self.materializer: Materializer | None = None

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self) + rule_servicer.register(server, self.rulebook)

    async def start(self) -> None:
        if self.conf.migrate_on_start:
            await run_migrations(self.conf.database_url, self.conf.compress_after_days)
        await self.store.open()  # SchemaBehind keeps the service NOT_SERVING (the runtime logs why)
        await self.rulebook.open(file_definitions(self.conf.rules_file))
        if self.conf.session_addr:
            self.bans = BanDeliverer(self.store, self.conf.session_addr, timeout=self.conf.ban_timeout_seconds,
                                     retry_max_seconds=self.conf.ban_retry_max_seconds)
        elif any(r.ban for r in self.rules if r.enabled):
            log.warning("rules with bans are configured but SESSION_SERVICE_ADDR is empty: bans are not sent")
        self.detector = Detector(self.store, self.rules,
                                 ban_request=serialized_ban if self.bans else None,
                                 on_ban=self.bans.wake if self.bans else None,
                                 baseline_cache_seconds=self.conf.baseline_cache_seconds)
        self.detection = DetectionQueue(self.detector, gather_seconds=self.conf.detection_gather_seconds)
        self.writer = Writer(self._commit, after_commit=self.detection.put, max_rows=self.conf.queue_max_rows,
                             max_bytes=self.conf.queue_max_bytes, commit_max_rows=self.conf.commit_max_rows,
                             writers=self.conf.writers)
        self._maintenance = asyncio.create_task(self._maintain(), name="ingest-maintenance")
        if self.conf.materialize:
            self.materializer = Materializer.configured(self.store, self.conf)
            self.materializer.start()

    async def check(self) -> None:
        await self.store.ping()

    def _use_rules(self, rules: list[Rule]) -> None:
        """The hook the rulebook calls after each reload: the detector's next pass uses these."""
        self.rules = rules
        if self.detector is not None:
            self.detector.rules = [r for r in rules if r.enabled]
            self.detector._percentiles.clear()  # a changed baseline rule must not reuse the old number

    async def close(self) -> None:
        await self.rulebook.close()
        if self.materializer is not None:
            await self.materializer.close()
        if self.writer is not None:
            await self.writer.close()
            await self.detection.close()
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        if self.bans is not None:
            await self.bans.close()
        await self.store.close()

    # -- domain entry points (called by the servicer) --

    def validate(self, items: list[RawAction], prefix: str = "actions", indexed: bool = True) -> list[Row]:
        return validate(items, self.window, prefix=prefix, indexed=indexed)

    def validate_columns(self, columns: Columns) -> list[Row]:
        return validate_columns(columns, self.window)

    def batch_key(self, key: tuple[str, int, int] | None, digest: Callable[[], str]) -> BatchKey | None:
        """The batch's idempotency key (producer id, epoch, sequence), validated; None without one.
        ``digest`` (of what the client sent) is computed only for keyed batches."""
        return None if key is None else batch_key(*key, digest())

    async def submit(self, rows: list[Row], key: BatchKey | None = None) -> Outcome:
        """Wait for the commit of validated rows; returns the batch's outcome."""
        if self.writer is None:
            raise Unavailable("ingest is starting (database not ready)", retry_after=1.0)
        return await self.writer.submit(rows, key)

    async def _commit(self, batches: Sequence[Batch]):
        result = await self.store.write(batches)
        wanted = bool(self.detector and self.detector.rules)
        return result.outcomes, (touched(result.kept) if wanted else [])

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


SPEC = ServiceSpec("ingest", IngestConfig, Ingest, default_port=50051,
                   commands={"migrate": migrate_command, "import-sqlite": sqlite_import.import_command})
