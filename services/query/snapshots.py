"""Shared, recently computed results of the expensive dashboard reads.

Overview, top players and hourly load aggregate every player in a window: even from the rollups
that is a second-scale query at 10M actions/day, far beyond a dashboard's latency budget. So each
distinct request (key) is computed once by one task and shared: a result younger than
``fresh_for`` is returned as is; an older one is still returned (it carries its own ``as_of``)
while one background task recomputes it, until it is older than ``stale_for``, after which
callers wait for the recomputation (bounded by their deadline). ``fresh_for = 0`` disables all
of this: every call computes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from services.runtime.errors import DeadlineExceeded

#: How old the shared result a caller received was (0: computed for it); bounded by stale_for.
SNAPSHOT_AGE = Histogram("banhammer_query_snapshot_age_seconds", "Age of the shared dashboard result each call "
                         "was answered with", buckets=(0.0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))

from .deadline import Deadline

log = logging.getLogger("banhammer.query.snapshots")


@dataclass
class _Entry:
    value: Any
    at: float


class Snapshots:
    def __init__(self, fresh_for: float, stale_for: float, compute_timeout: float = 60.0, max_entries: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_for = fresh_for
        self.compute_timeout = compute_timeout
        self.stale_for = max(stale_for, fresh_for)
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._running: dict[Hashable, asyncio.Task] = {}

    @property
    def enabled(self) -> bool:
        return self.fresh_for > 0

    def peek(self, key: Hashable) -> Any | None:
        """The cached value for ``key`` regardless of age (e.g. to serve a later page of it)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    async def get(self, key: Hashable, compute: Callable[[Deadline], Awaitable[Any]], deadline: Deadline) -> Any:
        """``compute(deadline)``: the caller's deadline when uncached; when shared, a budget of
        its own (``compute_timeout``), since no single caller's deadline should cut it short."""
        if not self.enabled:
            return await compute(deadline)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if now - entry.at < self.fresh_for:
                SNAPSHOT_AGE.observe(now - entry.at)
                return entry.value
        task = self._refresh(key, compute)
        if entry is not None and now - entry.at < self.stale_for:
            SNAPSHOT_AGE.observe(now - entry.at)
            return entry.value
        remaining = deadline.remaining()
        try:
            # shield: a caller giving up must not cancel the computation others wait for
            value = await asyncio.wait_for(asyncio.shield(task), remaining)
            SNAPSHOT_AGE.observe(0.0)  # computed for this caller (or while it waited)
            return value
        except asyncio.TimeoutError:
            raise DeadlineExceeded("deadline passed waiting for the shared computation") from None

    def _refresh(self, key: Hashable, compute: Callable[[Deadline], Awaitable[Any]]) -> asyncio.Task:
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(key, compute), name=f"snapshot-{key!r}")
            self._running[key] = task
            # A failure nobody awaits is already logged; mark it retrieved.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _compute(self, key: Hashable, compute: Callable[[Deadline], Awaitable[Any]]) -> Any:
        try:
            value = await compute(Deadline.after(self.compute_timeout, capped=False))
        except Exception as exc:
            log.warning("snapshot computation failed", extra={"key": repr(key), "reason": repr(exc)})
            raise
        finally:
            self._running.pop(key, None)
        self._entries[key] = _Entry(value, self.clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
