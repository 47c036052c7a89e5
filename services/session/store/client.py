"""Redis clients of the session service.

Fail fast: short connect/command timeouts and a single quick retry (which also heals a pooled
connection Redis dropped when it restarted). Nothing is cached across a Redis outage, so the
service recovers by itself on the next call once Redis answers again. Every store class is wrapped
by the runtime's store guard (``services.runtime.store_errors``), which turns an unreachable Redis
into UNAVAILABLE and Redis out of memory into RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

#: How the store is named in errors ("session store unavailable").
STORE = "session store"


def connect(url: str, *, max_connections: int, timeout: float, socket_timeout: float | None = None) -> redis.Redis:
    """A pooled client; calls beyond ``max_connections`` wait up to ``timeout`` for a connection."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout if socket_timeout is None else socket_timeout,
        retry=Retry(ConstantBackoff(0.01), 1),
        retry_on_error=[RedisConnectionError],
        health_check_interval=0,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool
