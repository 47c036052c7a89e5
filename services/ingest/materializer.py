"""The materializer: folds the write path's queued batches into the aggregates, in the background.

One task per fold family (``store/fold.py``), each on its own cadence: ``stats`` (what the
dashboard's overview and hourly load read) often, ``top`` (per player) a little less often unless
its queue has grown past ``min_rows``. A fold that finds a full batch limit goes again at once (catching
up after an outage); any replica may run one, the family's advisory lock makes the others skip.
Readers stay exact meanwhile: they add the raw rows of the batches still queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from . import metrics
from .config import IngestConfig
from .store import IngestStore

log = logging.getLogger("banhammer.ingest.materializer")

#: How often a family with a row threshold looks at its queue depth.
POLL_SECONDS = 0.5
#: How often aggregates past retention are deleted.
EXPIRE_SECONDS = 3600.0


@dataclass(frozen=True)
class Cadence:
    every: float  # seconds between folds
    min_rows: int = 0  # fold sooner once this many rows are queued (0: only every `every`)


class Materializer:
    def __init__(self, store: IngestStore, cadences: dict[str, Cadence], *, max_batches: int,
                 retention_days: int) -> None:
        self.store = store
        self.cadences = cadences
        self.max_batches = max_batches
        self.retention_days = retention_days
        self._tasks: list[asyncio.Task] = []

    @classmethod
    def configured(cls, store: IngestStore, c: IngestConfig) -> Materializer:
        return cls(store, {"stats": Cadence(c.fold_stats_seconds),
                           "top": Cadence(c.fold_top_seconds, c.fold_min_rows)},
                   max_batches=c.fold_max_batches, retention_days=c.retention_days)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(f, c), name=f"fold-{f}") for f, c in self.cadences.items()]
        self._tasks.append(asyncio.create_task(self._expire(), name="fold-expire"))
        self._tasks.append(asyncio.create_task(self._watch(), name="fold-lag"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, family: str, cadence: Cadence) -> None:
        last = 0.0
        while True:
            try:
                due = time.monotonic() - last >= cadence.every
                if not due and cadence.min_rows:
                    due = await self.store.queued_rows(family) >= cadence.min_rows
                if due:
                    last = time.monotonic()
                    done = await self.store.fold(family, self.max_batches)
                    if done.batches >= self.max_batches:
                        continue  # a backlog: fold again at once
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the batches stay queued; the next round retries them
                log.exception("fold failed", extra={"family": family})
            await asyncio.sleep(min(cadence.every, POLL_SECONDS) if cadence.min_rows else cadence.every)

    async def _watch(self) -> None:
        """Publish each queue's depth and the age of its oldest batch (the folds' lag) for /metrics."""
        while True:
            try:
                for q in await self.store.fold_queues():
                    metrics.LAG_SECONDS.labels(f"fold_{q.family}").set(q.lag_seconds)
                    metrics.FOLD_QUEUED_ROWS.labels(q.family).set(q.rows)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a missed sample; the next one comes in a second
                log.debug("fold lag sample failed", exc_info=True)
            await asyncio.sleep(POLL_SECONDS * 2)

    async def _expire(self) -> None:
        while True:
            try:
                await self.store.expire_aggregates(self.retention_days)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - retried next round
                log.exception("aggregate expiry failed")
            await asyncio.sleep(EXPIRE_SECONDS)
