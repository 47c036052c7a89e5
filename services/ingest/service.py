"""The ingest service as the runtime sees it: config, store, writer, detector, servicers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from services.runtime import Service, ServiceSpec, Unavailable

from . import metrics, servicer, sqlite_import
from .actions import RawAction, Row, TimeWindow, validate
from .bans import BanClient
from .config import IngestConfig
from .detection import DetectionQueue, Detector
from .rules import Rule, load_rules
from .store import IngestStore, run_migrations
from .store import detect as detect_sql
from .writer import Writer

log = logging.getLogger("banhammer.ingest")


class Ingest(Service):
    def __init__(self, conf: IngestConfig) -> None:
        self.conf = conf
        self.rules = load_rules(conf.rules_file)  # a bad rules file is a configuration error
        self.window = TimeWindow.of_seconds(conf.late_limit_seconds, conf.future_limit_seconds)
        self.store = IngestStore(conf.database_url, pool_size=conf.pool_size, late_seconds=conf.late_limit_seconds)
        self.bans = BanClient(conf.session_addr, timeout=conf.ban_timeout_seconds) if conf.session_addr else None
        self.writer: Writer | None = None
        self.detector: Detector | None = None
        self._maintenance: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def start(self) -> None:
        if self.conf.migrate_on_start:
            await run_migrations(self.conf.database_url, self.conf.compress_after_days)
        await self.store.open()  # SchemaBehind keeps the service NOT_SERVING (the runtime logs why)
        if any(r.ban for r in self.rules if r.enabled) and self.bans is None:
            log.warning("rules with bans are configured but SESSION_SERVICE_ADDR is empty: bans are not sent")
        self.detector = Detector(self.store.pool, self.rules, ban_sink=self._ban if self.bans else None,
                                 baseline_cache_seconds=self.conf.baseline_cache_seconds)
        self.detection = DetectionQueue(self.detector, gather_seconds=self.conf.detection_gather_seconds)
        self.writer = Writer(self._commit, after_commit=self.detection.put, max_rows=self.conf.queue_max_rows,
                             max_bytes=self.conf.queue_max_bytes, commit_max_rows=self.conf.commit_max_rows,
                             writers=self.conf.writers)
        metrics.follow_queue(lambda: self.writer.queued_rows, lambda: self.writer.queued_bytes)
        metrics.follow_lag("detection", self.detection.lag_seconds)
        self._maintenance = asyncio.create_task(self._maintain(), name="ingest-maintenance")

    async def check(self) -> None:
        await self.store.ping()

    async def close(self) -> None:
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

    async def record(self, items: list[RawAction], prefix: str = "actions",
                     indexed: bool = True) -> tuple[list[Row], int]:
        """Validate a batch and wait for its commit; returns its rows and how many were duplicates."""
        rows = self.validate(items, prefix=prefix, indexed=indexed)
        return rows, await self.submit(rows)

    def validate(self, items: list[RawAction], prefix: str = "actions", indexed: bool = True) -> list[Row]:
        return validate(items, self.window, prefix=prefix, indexed=indexed)

    async def submit(self, rows: list[Row]) -> int:
        """Wait for the commit of validated rows; returns how many were duplicates."""
        if self.writer is None:
            raise Unavailable("ingest is starting (database not ready)", retry_after=1.0)
        return await self.writer.submit(rows)

    async def _commit(self, batches: Sequence[Sequence[Row]]):
        with metrics.COMMIT_SECONDS.time():
            result = await self.store.write(batches, want_touched=bool(self.detector and self.detector.rules))
        metrics.ROWS_COMMITTED.inc(sum(len(b) for i, b in enumerate(batches) if i not in (result.failures or {})))
        metrics.DUPLICATES.inc(sum(d for d in result.duplicates if isinstance(d, int)))
        per_batch: list = list(result.duplicates)
        for i, exc in (result.failures or {}).items():
            per_batch[i] = exc
        return per_batch, result.touched

    async def _ban(self, rule: Rule, recorded: list[detect_sql.Recorded],
                   found: dict[str, detect_sql.Candidate]) -> None:
        async def one(v: detect_sql.Recorded) -> None:
            until = await self.bans.ban(rule, v, found[v.player_id].evidence)
            if until is not False:
                metrics.BANS_SENT.inc()
                async with self.store.pool.acquire() as conn:
                    await detect_sql.set_banned_until(conn, v.player_id, until)

        await asyncio.gather(*(one(v) for v in recorded))

    async def _maintain(self) -> None:
        while True:
            try:
                await self.store.maintain(self.conf.retention_days)
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
