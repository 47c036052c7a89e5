"""Read-through caching in the session service's CacheService, with stampede protection.

Values are opaque bytes (the servicers cache serialized responses). A cache outage never fails a
read: the value is computed directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .session_client import SessionClient


async def cached(sessions: SessionClient, key: str, ttl: float, compute: Callable[[], Awaitable[bytes]],
                 lease_seconds: float = 10.0, max_wait: float = 0.5) -> bytes:
    value, lease = await sessions.get_or_lease(key, lease_seconds, max_wait)
    if value is not None:
        return value
    try:
        value = await compute()
    except BaseException:
        await sessions.release_lease(key, lease)
        raise
    await sessions.cache_set(key, value, ttl, lease)
    return value
