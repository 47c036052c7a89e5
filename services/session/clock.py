"""Time for the domain layer, injectable so expiry can be tested without sleeping.

Session and ban expiry is decided by comparing stored expiry times with this clock (never by
Redis TTLs), so a test advances a ``ManualClock`` instead of waiting.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told (tests, benchmarks of expiry paths)."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = SystemClock().now_ms() if start_ms is None else start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1000)
