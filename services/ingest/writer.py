"""Group commit: concurrent small requests coalesce into larger transactions.

Each request's batch waits in one bounded queue (bounded by rows and by bytes, counted until the
batch is committed, so memory stays bounded whatever the callers do). A full queue answers
RESOURCE_EXHAUSTED with a retry delay estimated from the recent commit rate; nothing is dropped.
``writers`` flusher tasks each take up to ``commit_max_rows`` rows of queued batches, commit them
in one transaction, resolve every batch's future (an acknowledgement means committed), then run
the post-commit hook (handing the group to detection, which waits only when detection is far
behind) before taking more, so slow detection slows intake instead of piling up work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.runtime.errors import ResourceExhausted, Unavailable

from .actions import BatchKey, Row, row_bytes
from .store.writes import Batch, Outcome

log = logging.getLogger("banhammer.ingest.writer")

# Returns, per batch, its outcome (or the exception that batch alone failed with), and whatever
# the post-commit hook needs.
Commit = Callable[[Sequence[Batch]], Awaitable[tuple[list[Outcome | BaseException], Any]]]
AfterCommit = Callable[[Any], Awaitable[None]]


@dataclass
class _Pending:
    rows: Sequence[Row]
    size: int
    key: BatchKey | None
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Writer:
    def __init__(self, commit: Commit, *, after_commit: AfterCommit | None = None, max_rows: int = 100_000,
                 max_bytes: int = 32 << 20, commit_max_rows: int = 20_000, writers: int = 2) -> None:
        self._commit = commit
        self._after = after_commit
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.commit_max_rows = commit_max_rows
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self.queued_rows = 0  # queued plus being committed
        self.queued_bytes = 0
        self._rate = 20_000.0  # rows/s, smoothed; only used for the retry advice
        self._closing = False
        self._tasks = [asyncio.create_task(self._flush_loop(), name=f"ingest-writer-{i}") for i in range(writers)]

    def retry_after(self) -> float:
        return round(min(5.0, max(0.05, self.queued_rows / max(self._rate, 1.0))), 3)

    async def submit(self, rows: Sequence[Row], key: BatchKey | None = None) -> Outcome:
        """Queue one batch and wait until it is committed; returns its outcome."""
        if self._closing:
            raise Unavailable("ingest is shutting down", retry_after=1.0)
        size = sum(map(row_bytes, rows))
        if self.queued_rows and (self.queued_rows + len(rows) > self.max_rows or self.queued_bytes + size > self.max_bytes):
            raise ResourceExhausted("write queue is full; retry later", retry_after=self.retry_after())
        pending = _Pending(rows, size, key)
        self._queue.append(pending)
        self.queued_rows += len(rows)
        self.queued_bytes += size
        self._wakeup.set()
        return await asyncio.shield(pending.future)  # a cancelled caller must not cancel the commit

    def _take(self) -> list[_Pending]:
        group: list[_Pending] = []
        n = 0
        while self._queue and (not group or n + len(self._queue[0].rows) <= self.commit_max_rows):
            p = self._queue.popleft()
            group.append(p)
            n += len(p.rows)
        if not self._queue:
            self._wakeup.clear()
        return group

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            group = self._take()
            if not group:
                continue
            started = time.monotonic()
            rows = sum(len(p.rows) for p in group)
            try:
                outcomes, info = await self._commit([Batch(p.rows, p.key) for p in group])
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)
                self._release(group)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for p, outcome in zip(group, outcomes):
                if p.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    p.future.set_exception(outcome)
                else:
                    p.future.set_result(outcome)
            self._release(group)
            elapsed = max(time.monotonic() - started, 1e-4)
            self._rate = 0.8 * self._rate + 0.2 * (rows / elapsed)
            if self._after is not None:
                try:
                    await self._after(info)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the actions are committed; detection is best effort
                    log.exception("post-commit detection failed")

    def _release(self, group: list[_Pending]) -> None:
        for p in group:
            self.queued_rows -= len(p.rows)
            self.queued_bytes -= p.size
        for p in group:  # exceptions nobody awaited (caller gone) must not warn at GC
            if p.future.done() and not p.future.cancelled():
                p.future.exception()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, let queued batches commit, then stop the flushers."""
        self._closing = True
        deadline = time.monotonic() + timeout
        while self.queued_rows and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in self._queue:
            if not p.future.done():
                p.future.set_exception(Unavailable("ingest is shutting down", retry_after=1.0))
