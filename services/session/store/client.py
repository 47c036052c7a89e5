"""Redis clients and the one mapping of Redis failures to domain errors.

Fail fast: short connect/command timeouts and a single quick retry (which also heals a pooled
connection Redis dropped when it restarted). Nothing is cached across a Redis outage, so the
service recovers by itself on the next call once Redis answers again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.runtime.errors import ResourceExhausted, Unavailable

log = logging.getLogger("banhammer.session.redis")

P = ParamSpec("P")
T = TypeVar("T")


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


def translate(exc: Exception) -> Exception:
    """The domain error for a Redis failure (or ``exc`` itself when it is not one)."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, ReadOnlyError)):
        # BusyLoadingError (AOF replay after a restart) is a ConnectionError too.
        return Unavailable("session store unavailable", retry_after=1.0)
    if isinstance(exc, ResponseError) and str(exc).startswith("OOM"):
        return ResourceExhausted("session store out of memory", retry_after=5.0)
    return exc


def guard(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate a store coroutine so Redis outages surface as ``Unavailable``."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, ResponseError) as exc:
            mapped = translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    return wrapper
