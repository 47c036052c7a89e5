"""The write side of ingest as one domain object: validation, group commit, detection, ban delivery.

The servicer hands it decoded batches; it validates them, queues them for the writer (an
acknowledgement means committed), hands each committed group to detection, whose bans go through
the durable outbox to the session service. The store holds all SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from services.runtime import Unavailable

from . import metrics
from .actions import BatchKey, Columns, RawAction, Row, TimeWindow, batch_key, validate, validate_columns
from .bans import BanDeliverer, serialized_ban
from .config import IngestConfig
from .detection import DetectionQueue, Detector
from .rules import Rule
from .store import IngestStore
from .store.writes import Batch, Outcome, touched
from .writer import Writer

log = logging.getLogger("banhammer.ingest.pipeline")


class Pipeline:
    def __init__(self, conf: IngestConfig, store: IngestStore, rules: Sequence[Rule]) -> None:
        self.conf = conf
        self.store = store
        self.rules = list(rules)
        self.window = TimeWindow.of_seconds(conf.late_limit_seconds, conf.future_limit_seconds)
        self.bans: BanDeliverer | None = None
        self.detector: Detector | None = None
        self.detection: DetectionQueue | None = None
        self.writer: Writer | None = None

    def start(self) -> None:
        """Start the writer, detection and ban delivery (the store is open)."""
        c = self.conf
        if c.session_addr:
            self.bans = BanDeliverer(self.store, c.session_addr, timeout=c.ban_timeout_seconds,
                                     retry_max_seconds=c.ban_retry_max_seconds)
        elif any(r.ban for r in self.rules if r.enabled):
            log.warning("rules with bans are configured but SESSION_SERVICE_ADDR is empty: bans are not sent")
        self.detector = Detector(self.store, self.rules, ban_request=serialized_ban if self.bans else None,
                                 on_ban=self.bans.wake if self.bans else None,
                                 baseline_cache_seconds=c.baseline_cache_seconds)
        self.detection = DetectionQueue(self.detector, gather_seconds=c.detection_gather_seconds)
        self.writer = Writer(self._commit, after_commit=self.detection.put, max_rows=c.queue_max_rows,
                             max_bytes=c.queue_max_bytes, commit_max_rows=c.commit_max_rows, writers=c.writers)
        metrics.follow_queue(lambda: self.writer.queued_rows, lambda: self.writer.queued_bytes)
        metrics.follow_lag("detection", self.detection.lag_seconds)

    async def close(self) -> None:
        """Let queued batches commit, then stop detection and delivery (undelivered bans stay queued)."""
        if self.writer is not None:
            await self.writer.close()
        if self.detection is not None:
            await self.detection.close()
        if self.bans is not None:
            await self.bans.close()

    def use_rules(self, rules: Sequence[Rule]) -> None:
        """New rules (the rulebook reloaded): detection's next pass uses them."""
        self.rules = list(rules)
        if self.detector is not None:
            self.detector.use_rules(rules)

    # -- what the servicer calls --

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
        with metrics.COMMIT_SECONDS.time():
            result = await self.store.write(batches)
        metrics.ROWS_COMMITTED.inc(len(result.kept))
        metrics.DUPLICATES.inc(sum(o.duplicates for o in result.outcomes if not isinstance(o, BaseException)))
        wanted = bool(self.detector and self.detector.rules)
        return result.outcomes, (touched(result.kept) if wanted else [])
