"""All database access of the ingest service: one pool, capability detection, the write path.

SQL lives in the modules beside this one (``writes``, ``detect``, ``partitions``, ``migrate``);
this class owns the pool and turns driver failures into domain errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import asyncpg

from services.runtime.errors import FailedPrecondition, Unavailable
from services.runtime.postgres import LazyPool
from services.runtime.store_errors import UNREACHABLE, guard

from ..actions import Row
from . import detect, fold, migrate, outbox, partitions, writes
from .writes import Batch

log = logging.getLogger("banhammer.ingest.store")

# Failures that mean "the database is not there right now": the client may retry the batch.
# The runtime's list, plus a pool timeout and a connection closed under a call (the write path maps
# these itself: a failed group is retried batch by batch before anything is reported).
CONNECTION_ERRORS = (*UNREACHABLE, asyncio.TimeoutError, asyncpg.InterfaceError)
# Transient conflicts between concurrent writers: the same group is simply retried.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class SchemaBehind(FailedPrecondition):
    pass


@guard("ingest database")
class IngestStore:
    def __init__(self, url: str, *, pool_size: int = 8, late_seconds: float = 86400.0,
                 copy_min_rows: int = 64) -> None:
        self.url = url
        self.copy_min_rows = copy_min_rows
        self._statements = writes.Statements.of([])  # rebuilt at open() for the queues the schema has
        self.late_seconds = late_seconds
        self.timescale = False
        self._db = LazyPool(url, max_size=pool_size, application_name="banhammer-ingest", keep_session=True)
        self._ready = False
        self.hll = False

    @property
    def pool(self) -> asyncpg.Pool:
        if not self._ready:
            raise Unavailable("database not connected yet", retry_after=1.0)
        return self._db.pool

    async def open(self) -> None:
        """Connect and detect the capability; the schema must already be migrated."""
        if not self._ready:
            async with _connect(self.url) as conn:
                version = await migrate.schema_version(conn)
                if version < migrate.LATEST:
                    raise SchemaBehind(
                        f"database schema is at version {version}, this build needs {migrate.LATEST}: "
                        "run `python -m services.ingest migrate` (or set INGEST_MIGRATE_ON_START=true)")
                self.timescale = await migrate.has_timescale(conn)
                queues = [r["tablename"] for r in await conn.fetch(writes.FIND_QUEUES)]
                self._statements = writes.Statements.of(queues)  # every transaction feeds each queue
                self.hll = await fold.has_hll(conn)
            await self._db.open()
            self._ready = True
        if not self.timescale:
            async with self.pool.acquire() as conn:
                await partitions.ensure_window(conn, self.late_seconds)

    async def ping(self) -> None:
        async with self.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)

    async def close(self) -> None:
        self._ready = False
        await self._db.close()

    async def write(self, batches: Sequence[Batch]) -> writes.GroupResult:
        """Commit a group; a bad batch inside a group fails alone, not its neighbours."""
        try:
            return await self._write_retrying(batches)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("database unavailable; resend the batch", retry_after=1.0) from exc
        except asyncpg.PostgresError:
            if len(batches) == 1:
                raise
        log.warning("group commit failed; committing its batches one by one", extra={"batches": len(batches)})
        outcomes: list = []
        kept: list[Row] = []
        for batch in batches:
            try:
                r = await self._write_retrying([batch])
            except CONNECTION_ERRORS as exc:
                raise Unavailable("database unavailable; resend the batch", retry_after=1.0) from exc
            except asyncpg.PostgresError as exc:
                outcomes.append(exc)
                continue
            outcomes.extend(r.outcomes)
            kept.extend(r.kept)
        return writes.GroupResult(outcomes, kept)

    async def _write_retrying(self, batches: Sequence[Batch]) -> writes.GroupResult:
        for attempt in range(4):
            try:
                async with self.pool.acquire(timeout=10) as conn:
                    return await writes.write_group(conn, batches, statements=self._statements,
                                                    copy_min_rows=self.copy_min_rows)
            except RETRYABLE:
                if attempt == 3:
                    raise
                await asyncio.sleep(0.01 * 2 ** attempt)
            except asyncpg.CheckViolationError as exc:
                if exc.sqlstate != partitions.NO_PARTITION or self.timescale or attempt == 3:
                    raise
                # An accepted event fell on a day without a partition (e.g. a longer late limit).
                first = min(r.time for b in batches for r in b.rows)
                last = max(r.time for b in batches for r in b.rows)
                async with self.pool.acquire(timeout=10) as conn:
                    await partitions.ensure_days(conn, partitions.days_between(first, last))
        raise AssertionError("unreachable")

    # -- detection (SQL in detect.py) --

    async def window_hits(self, aggregate: str, players: Sequence[str], t_ends: Sequence[datetime],
                          action_type: str | None, window: float, threshold: float) -> list[detect.WindowHit]:
        async with self.pool.acquire() as conn:
            return await detect.window_hits(conn, aggregate, players, t_ends, action_type, window, threshold)

    async def percentile(self, pct: float, window: float, action_type: str | None) -> detect.Percentile:
        async with self.pool.acquire() as conn:
            return await detect.percentile(conn, pct, window, action_type)

    async def record_violations(self, rule: str, severity: int, weight: float,
                                ban: Callable[[detect.Recorded], bytes] | None, cooldown: float,
                                found: Sequence[detect.Candidate]) -> list[detect.Recorded]:
        async with self.pool.acquire() as conn:
            return await detect.record(conn, rule, severity, weight, ban, cooldown, found)

    # -- the ban outbox (SQL in outbox.py) --

    async def lease_bans(self, limit: int, lease_seconds: float) -> list[outbox.Leased]:
        async with self.pool.acquire() as conn:
            return await outbox.lease(conn, limit, lease_seconds)

    async def ban_delivered(self, violation_id: int, player_id: str, until: datetime | None) -> None:
        """The session service acknowledged: record the ban's end (None: permanent), drop the row."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                await detect.set_banned_until(conn, player_id, until)
                await outbox.delivered(conn, violation_id)

    async def ban_failed(self, violation_id: int, error: str, retry_after: float | None) -> None:
        """Retry after ``retry_after`` seconds, or (None) keep the row as refused for good."""
        async with self.pool.acquire() as conn:
            if retry_after is None:
                await outbox.refused(conn, violation_id, error)
            else:
                await outbox.retry(conn, violation_id, retry_after, error)

    async def ban_backlog(self) -> outbox.Backlog:
        async with self.pool.acquire() as conn:
            return await outbox.backlog(conn)

    async def refresh_aggregates(self, start: datetime, end: datetime) -> None:
        """TimescaleDB only: materialize both continuous aggregates over [start, end] (whole buckets)."""
        lo = start.replace(minute=0, second=0, microsecond=0)
        hi = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        async with self.pool.acquire() as conn:
            for statement in writes.REFRESH_AGGREGATES:
                await conn.execute(statement, lo, hi)

    async def maintain(self, retention_days: int, producer_retention_seconds: float) -> None:
        """Housekeeping: partitions ahead and expired (plain PostgreSQL), old event ids and batch keys."""
        async with self.pool.acquire() as conn:
            if not self.timescale:
                await partitions.ensure_window(conn, self.late_seconds)
                await partitions.expire(conn, retention_days)
            await partitions.expire_event_ids(conn, retention_days)
            await partitions.expire_batch_keys(conn, producer_retention_seconds)

    # -- the materializer's folds (SQL in fold.py) --

    async def fold(self, family: str, max_batches: int) -> fold.Folded:
        async with self.pool.acquire(timeout=10) as conn:
            return await fold.fold(conn, family, max_batches=max_batches, hll=self.hll)

    async def drain(self) -> dict[str, int]:
        """Fold until every queue is empty (a batch import's end); rows folded per family."""
        async with self.pool.acquire() as conn:
            return await fold.drain(conn)

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
