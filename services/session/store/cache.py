"""Namespaced cache entries and compute leases; every key here has a TTL (the evictable part)."""

from __future__ import annotations

import redis.asyncio as redis

from services.runtime.store_errors import guard

from . import keys, scripts
from .client import STORE


@guard(STORE)
class CacheStore:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self._get_or_lease = r.register_script(scripts.GET_OR_LEASE)
        self._set_with_lease = r.register_script(scripts.SET_WITH_LEASE)
        self._release = r.register_script(scripts.RELEASE_LEASE)

    async def get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        """(value, ms to live) or None."""
        async with self.r.pipeline(transaction=False) as pipe:
            k = keys.cache(namespace, key)
            value, pttl = await pipe.get(k).pttl(k).execute()
        return None if value is None else (value, max(int(pttl), 0))

    async def set(self, namespace: str, key: str, value: bytes, ttl_ms: int, lease_token: str) -> bool:
        """Stores the value; returns True when ``lease_token`` was the current lease (now released)."""
        if not lease_token:
            await self.r.set(keys.cache(namespace, key), value, px=ttl_ms)
            return False
        released = await self._set_with_lease(keys=[keys.cache(namespace, key), keys.cache_lease(namespace, key)],
                                              args=[value, ttl_ms, lease_token])
        return released == 1

    async def delete(self, namespace: str, key: str) -> bool:
        return await self.r.delete(keys.cache(namespace, key)) == 1

    async def get_or_lease(self, namespace: str, key: str, token: str, lease_ms: int) -> tuple[int, bytes, int]:
        """(1 hit | 2 leased | 3 wait, value, ms): ms is the value's TTL, the lease's, or the holder's remaining."""
        out = await self._get_or_lease(keys=[keys.cache(namespace, key), keys.cache_lease(namespace, key)],
                                       args=[token, lease_ms])
        if out[0] == 1:
            return 1, out[1], max(int(out[2]), 0)
        return int(out[0]), b"", max(int(out[1]), 0)

    async def release(self, namespace: str, key: str, token: str) -> bool:
        return await self._release(keys=[keys.cache_lease(namespace, key)], args=[token]) == 1
