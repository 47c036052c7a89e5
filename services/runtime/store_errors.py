"""The one mapping of store failures to status codes, for every store of every service (PostgreSQL,
Redis, InfluxDB).

A store that cannot be reached now (connection refused, lost or timed out, the server shutting down
or starting up, too many connections, a Redis replica that is read-only during a failover) is
UNAVAILABLE with retry advice: the same request may simply be sent again. Redis out of memory is
RESOURCE_EXHAUSTED (overload). Everything else passes through unchanged: a constraint the domain
expects (a unique violation, say) is handled where it is expected, and anything unexpected reaches
the error interceptor, which reports INTERNAL with a log reference.

    @guard("energy database")            # a store class (every public coroutine) or one coroutine
    class BuildingStore: ...

    async with guard("ingest database"):  # a block (e.g. around an async generator's reads)
        ...

A client of another store type makes its "cannot reach the server" error a ``ConnectionError``
(e.g. energy's InfluxDB client), and the guard maps it like the drivers' own.
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, TypeVar

import asyncpg
from redis import exceptions as redis_errors

from .errors import DomainError, ResourceExhausted, Unavailable
from .metrics import STORE_FAILURES, STORE_SECONDS

T = TypeVar("T")

#: Failures that mean "the store is not there right now"; OSError covers refused and reset
#: connections and timeouts (TimeoutError is an OSError).
UNREACHABLE = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError,
    redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError,
)


def _closed(exc: BaseException) -> bool:
    # asyncpg reports a connection or pool closed under it as a bare InterfaceError (which also
    # covers programming errors, so only these messages count).
    return type(exc) is asyncpg.InterfaceError and any(
        text in str(exc) for text in ("connection is closed", "pool is closed", "pool is closing"))


def translate(exc: BaseException, store: str, retry_after: float = 1.0) -> DomainError | None:
    """The domain error for a store failure, or None when ``exc`` is not one (it passes through)."""
    if isinstance(exc, DomainError):
        return None
    if isinstance(exc, UNREACHABLE) or _closed(exc):
        return Unavailable(f"{store} unavailable", retry_after=retry_after)
    if isinstance(exc, redis_errors.OutOfMemoryError):
        return ResourceExhausted(f"{store} out of memory", retry_after=5.0)
    return None


class guard:  # noqa: N801 - used as a decorator and a context manager, named like one
    """Store failures inside become domain errors (see ``translate``)."""

    def __init__(self, store: str, retry_after: float = 1.0) -> None:
        self.store = store
        self.retry_after = retry_after

    async def __aenter__(self) -> guard:
        return self

    async def __aexit__(self, kind, exc: BaseException | None, tb) -> bool:
        mapped = None if exc is None else translate(exc, self.store, self.retry_after)
        if mapped is not None:
            raise mapped from exc
        return False

    def __call__(self, target: T) -> T:
        if isinstance(target, type):
            for name, member in list(vars(target).items()):
                if not name.startswith("_") and inspect.iscoroutinefunction(member):
                    setattr(target, name, self(member))
            return target
        if not inspect.iscoroutinefunction(target):
            raise TypeError(f"guard wraps coroutine functions and classes, not {target!r}")

        # Every guarded store method is timed too: the one place each store call passes through.
        timing = STORE_SECONDS.labels(self.store, target.__qualname__)
        failures = STORE_FAILURES.labels(self.store, target.__qualname__)

        @functools.wraps(target)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                async with self:
                    return await target(*args, **kwargs)
            except (Unavailable, ResourceExhausted):
                failures.inc()
                raise
            finally:
                timing.observe(time.perf_counter() - start)

        return guarded  # type: ignore[return-value]
