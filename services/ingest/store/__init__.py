"""All database access of the ingest service: one pool, capability detection, the write path.

SQL lives in the modules beside this one (``writes``, ``detect``, ``partitions``, ``migrate``);
this class owns the pool and turns driver failures into domain errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from services.runtime.errors import FailedPrecondition, Unavailable

from ..actions import Row
from . import fold, migrate, partitions, writes

log = logging.getLogger("banhammer.ingest.store")

# Failures that mean "the database is not there right now": the client may retry the batch.
CONNECTION_ERRORS = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# Transient conflicts between concurrent writers: the same group is simply retried.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class SchemaBehind(FailedPrecondition):
    pass


class IngestStore:
    def __init__(self, url: str, *, pool_size: int = 8, late_seconds: float = 86400.0) -> None:
        self.url = url
        self.pool_size = pool_size
        self.late_seconds = late_seconds
        self.timescale = False
        self.hll = False
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable("database not connected yet", retry_after=1.0)
        return self._pool

    async def open(self) -> None:
        """Connect and detect the capability; the schema must already be migrated."""
        if self._pool is None:
            async with _connect(self.url) as conn:
                version = await migrate.schema_version(conn)
                if version < migrate.LATEST:
                    raise SchemaBehind(
                        f"database schema is at version {version}, this build needs {migrate.LATEST}: "
                        "run `python -m services.ingest migrate` (or set INGEST_MIGRATE_ON_START=true)")
                self.timescale = await migrate.has_timescale(conn)
                self.hll = await fold.has_hll(conn)
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self.pool_size, reset=_keep_session,
                server_settings={"application_name": "banhammer-ingest"}, command_timeout=60)
        if not self.timescale:
            async with self.pool.acquire() as conn:
                await partitions.ensure_window(conn, self.late_seconds)

    async def ping(self) -> None:
        async with self.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def write(self, batches: Sequence[Sequence[Row]], *, want_touched: bool) -> writes.GroupResult:
        """Commit a group; a bad batch inside a group fails alone, not its neighbours."""
        try:
            return await self._write_retrying(batches, want_touched)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("database unavailable; resend the batch", retry_after=1.0) from exc
        except asyncpg.PostgresError:
            if len(batches) == 1:
                raise
        log.warning("group commit failed; committing its batches one by one", extra={"batches": len(batches)})
        duplicates: list[int] = []
        touched: list[writes.Touched] = []
        failures: dict[int, BaseException] = {}
        for i, batch in enumerate(batches):
            try:
                r = await self._write_retrying([batch], want_touched)
            except CONNECTION_ERRORS as exc:
                raise Unavailable("database unavailable; resend the batch", retry_after=1.0) from exc
            except asyncpg.PostgresError as exc:
                failures[i] = exc
                duplicates.append(0)
                continue
            duplicates.extend(r.duplicates)
            touched.extend(r.touched)
        return writes.GroupResult(duplicates, touched, failures)

    async def _write_retrying(self, batches, want_touched: bool) -> writes.GroupResult:
        for attempt in range(4):
            try:
                async with self.pool.acquire(timeout=10) as conn:
                    return await writes.write_group(conn, batches, rollups=not self.timescale,
                                                    want_touched=want_touched)
            except RETRYABLE:
                if attempt == 3:
                    raise
                await asyncio.sleep(0.01 * 2 ** attempt)
            except asyncpg.CheckViolationError as exc:
                if exc.sqlstate != partitions.NO_PARTITION or self.timescale or attempt == 3:
                    raise
                # An accepted event fell on a day without a partition (e.g. a longer late limit).
                first = min(r.time for b in batches for r in b)
                last = max(r.time for b in batches for r in b)
                async with self.pool.acquire(timeout=10) as conn:
                    await partitions.ensure_days(conn, partitions.days_between(first, last))
        raise AssertionError("unreachable")

    async def refresh_aggregates(self, start: datetime, end: datetime) -> None:
        """TimescaleDB only: materialize both continuous aggregates over [start, end] (whole buckets)."""
        lo = start.replace(minute=0, second=0, microsecond=0)
        hi = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        async with self.pool.acquire() as conn:
            for statement in writes.REFRESH_AGGREGATES:
                await conn.execute(statement, lo, hi)

    async def maintain(self, retention_days: int) -> None:
        """Plain PostgreSQL housekeeping: partitions ahead, expired partitions and event ids."""
        async with self.pool.acquire() as conn:
            if not self.timescale:
                await partitions.ensure_window(conn, self.late_seconds)
                await partitions.expire(conn, retention_days)
            await partitions.expire_event_ids(conn, retention_days)


    # -- the materializer's folds (SQL in fold.py) --

    async def fold(self, family: str, max_batches: int) -> fold.Folded:
        async with self.pool.acquire(timeout=10) as conn:
            return await fold.fold(conn, family, max_batches=max_batches, hll=self.hll)

    async def queued_rows(self, family: str) -> int:
        async with self.pool.acquire(timeout=10) as conn:
            return await conn.fetchval(f"SELECT coalesce(sum(rows), 0) FROM {fold.queue(family)}")

    async def fold_queues(self) -> list[fold.Queue]:
        """Depth and age of every fold queue (the materializer's lag, for the ops metrics)."""
        async with self.pool.acquire(timeout=10) as conn:
            return await fold.queues(conn)

    async def expire_aggregates(self, retention_days: int) -> None:
        async with self.pool.acquire() as conn:
            await fold.expire(conn, retention_days)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool ``reset``: skip asyncpg's default per-release round trip (RESET ALL, UNLISTEN, ...).

    Nothing here sets session state: no LISTEN, no session advisory locks (detection uses
    transaction-level ones), no SET."""


class _connect:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> asyncpg.Connection:
        self.conn = await asyncpg.connect(self.url, timeout=5)
        return self.conn

    async def __aexit__(self, *exc) -> None:
        await self.conn.close()


async def run_migrations(url: str, compress_after_days: int) -> list[int]:
    async with _connect(url) as conn:
        return await migrate.migrate(conn, compress_after_days=compress_after_days)
