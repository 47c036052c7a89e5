"""Reading writes: straight to InfluxDB while it answers, else to the spool, replayed in order.

Once anything is spooled, later batches are spooled too until the replay has drained the spool, so
InfluxDB receives batches in acknowledgement order. Replays may repeat a POST whose answer was lost;
that is harmless because a point with the same series and timestamp overwrites itself.
"""

from __future__ import annotations

import asyncio
import logging

from services.runtime import Unavailable

from .client import InfluxClient, InfluxRejected, InfluxUnavailable
from .spool import Spool, SpoolFull

log = logging.getLogger("banhammer.energy.writer")

MAX_POINTS_PER_POST = 5000  # InfluxDB's recommended batch size


class ReadingWriter:
    def __init__(self, influx: InfluxClient, spool: Spool, *, direct_timeout: float = 5.0,
                 retry_min: float = 0.2, retry_max: float = 5.0) -> None:
        self.influx = influx
        self.spool = spool
        self.direct_timeout = direct_timeout
        self.retry_min, self.retry_max = retry_min, retry_max
        self.influx_down = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.spool.open()
        if self.spool.pending_batches:
            self.influx_down = True  # replay what a previous process acknowledged first
        self._task = asyncio.create_task(self._replay(), name="energy-spool-replay")

    async def write(self, payload: bytes, points: int) -> bool:
        """Make ``payload`` durable; returns True when it was spooled. Unavailable when the spool is full."""
        if not self.influx_down and self.spool.pending_batches == 0:
            try:
                await self.influx.write(payload, timeout=self.direct_timeout)
                return False
            except InfluxUnavailable as exc:
                log.warning("InfluxDB unavailable, spooling", extra={"reason": str(exc)})
                self.influx_down = True
        try:
            await self.spool.append(payload, points)
        except SpoolFull:
            raise Unavailable("sensor storage unavailable and the local spool is full", retry_after=5) from None
        self._wake.set()
        return True

    async def _replay(self) -> None:
        delay = self.retry_min
        while True:
            if self.spool.pending_batches == 0:
                self.influx_down = False
                self._wake.clear()
                await self._wake.wait()
                continue
            batches = await self.spool.oldest(MAX_POINTS_PER_POST)
            try:
                await self.influx.write(b"\n".join(b[2] for b in batches), timeout=self.direct_timeout)
            except InfluxUnavailable:
                await self._backoff(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            except InfluxRejected as exc:
                if len(batches) > 1:  # find the culprit on its own next time round
                    batches = batches[:1]
                    try:
                        await self.influx.write(batches[0][2], timeout=self.direct_timeout)
                    except InfluxRejected as exc1:
                        log.error("spooled batch rejected by InfluxDB", extra={"batch": batches[0][0], "reason": str(exc1)})
                        await self.spool.reject(batches[0][0], str(exc1))
                        continue
                    except InfluxUnavailable:
                        continue
                else:
                    log.error("spooled batch rejected by InfluxDB", extra={"batch": batches[0][0], "reason": str(exc)})
                    await self.spool.reject(batches[0][0], str(exc))
                    continue
            await self.spool.remove([b[0] for b in batches])
            delay = self.retry_min

    async def _backoff(self, delay: float) -> None:
        # Woken early by new spooled batches only after the delay: InfluxDB is still down.
        await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.spool.close()
