"""Rate-limit state: one small hash per key, changed only by the atomic GCRA script."""

from __future__ import annotations

import redis.asyncio as redis

from services.runtime.store_errors import guard

from . import keys, scripts
from .client import STORE


@guard(STORE)
class RateLimitStore:
    def __init__(self, r: redis.Redis) -> None:
        self._consume = r.register_script(scripts.RATE_LIMIT)

    async def consume(self, key: str, limit: int, window_ms: int, cost: int) -> tuple[bool, int, int, int]:
        """(allowed, remaining, retry_after ms, reset_after ms)."""
        allowed, remaining, retry, reset = await self._consume(keys=[keys.rate_limit(key)], args=[limit, window_ms, cost])
        return allowed == 1, int(remaining), int(retry), int(reset)
