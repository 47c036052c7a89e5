"""Check-and-consume rate limiting (GCRA in one Lua script, so concurrent callers never overshoot)."""

from __future__ import annotations

from dataclasses import dataclass

from .store.rate_limit import RateLimitStore
from .validation import Violations

MAX_LIMIT = 1_000_000_000
MIN_WINDOW_MS, MAX_WINDOW_MS = 1000, 86400_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_after_ms: int


class RateLimits:
    def __init__(self, store: RateLimitStore) -> None:
        self.store = store

    async def consume(self, key: str, limit: int, window_ms: int | None, cost: int) -> Decision:
        v = Violations()
        v.text("key", key, 1, 256)
        check_rule(v, limit, window_ms, cost)
        v.raise_if_any()
        return Decision(*await self.store.consume(key, limit, window_ms, cost or 1))


def check_rule(v: Violations, limit: int, window_ms: int | None, cost: int) -> None:
    """What ``consume`` accepts, apart from the key (the gateway checks its role limits with it once)."""
    if not 1 <= limit <= MAX_LIMIT:
        v.add("limit", f"must be 1..{MAX_LIMIT}")
    if window_ms is None or not MIN_WINDOW_MS <= window_ms <= MAX_WINDOW_MS:
        v.add("window", "required, 1 s..1 day")
    if cost < 0 or (1 <= limit and cost > limit):
        v.add("cost", "must be 0..limit (0 means 1)")
