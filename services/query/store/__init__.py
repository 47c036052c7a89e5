"""Read-only access to the ingest schema: one transaction per call, bounded by the call's deadline.

Every transaction sets ``statement_timeout`` (SET LOCAL, via set_config) to the smaller of the
configured cap and the caller's remaining time, so a query that outlives its RPC is cancelled by
PostgreSQL itself instead of running on. Driver errors become domain errors here, once: the query's
own (cancelled by its budget, schema missing) here, an unreachable database by the runtime's store
guard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg

from services.runtime.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from services.runtime.metrics import STORE_SECONDS
from services.runtime.postgres import LazyPool
from services.runtime.store_errors import guard

from ..deadline import Deadline
from . import sql

#: Time kept back from the caller's deadline for the round trip and the reply.
DEADLINE_MARGIN_S = 0.02
#: How the database is named in errors ("ingest database unavailable").
STORE = "ingest database"


class Session:
    """One read-only transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, stmt: sql.Statement, values: Mapping[str, Any] | None = None) -> list[asyncpg.Record]:
        with STORE_SECONDS.labels(STORE, stmt.name).time():  # statement latency per query kind
            return await self.conn.fetch(stmt.sql, *stmt.args(values or {}))

    async def fetchrow(self, stmt: sql.Statement, values: Mapping[str, Any] | None = None) -> asyncpg.Record | None:
        with STORE_SECONDS.labels(STORE, stmt.name).time():
            return await self.conn.fetchrow(stmt.sql, *stmt.args(values or {}))


class QueryStore:
    def __init__(self, db: LazyPool, *, cap_ms: int, acquire_timeout_s: float) -> None:
        self.db = db
        self.cap_ms = cap_ms
        self.acquire_timeout_s = acquire_timeout_s

    def timeout_ms(self, deadline: Deadline) -> int:
        """Statement timeout for a call with ``deadline``; DeadlineExceeded if nothing is left."""
        remaining = deadline.remaining()
        if remaining is None:
            return self.cap_ms
        budget = int((remaining - DEADLINE_MARGIN_S) * 1000)
        if budget <= 0:
            raise DeadlineExceeded("deadline too short to run the query")
        return min(self.cap_ms, budget) if deadline.capped else budget

    @contextlib.asynccontextmanager
    async def session(self, deadline: Deadline, *, consistent: bool = False) -> AsyncIterator[Session]:
        """A read-only transaction; ``consistent``: REPEATABLE READ, so several statements see one
        snapshot (allowed on hot standbys too)."""
        timeout_ms = self.timeout_ms(deadline)
        remaining = deadline.remaining()
        wait = self.acquire_timeout_s if remaining is None else min(self.acquire_timeout_s, remaining)
        async with guard(STORE):
            try:
                pool = self.db.pool
                try:
                    conn = await pool.acquire(timeout=wait)
                except asyncio.TimeoutError:
                    if remaining is not None and wait >= remaining:
                        raise DeadlineExceeded("deadline passed waiting for a database connection") from None
                    raise ResourceExhausted("all database connections are busy", retry_after=0.5) from None
                try:
                    isolation = "repeatable_read" if consistent else "read_committed"
                    async with conn.transaction(isolation=isolation, readonly=True):
                        await conn.execute(sql.SET_TIMEOUT.sql, str(timeout_ms))
                        yield Session(conn)
                finally:
                    await pool.release(conn)
            except asyncpg.QueryCanceledError:
                raise DeadlineExceeded(f"query cancelled after its {timeout_ms} ms budget") from None
            except asyncpg.UndefinedTableError:
                raise Unavailable("the ingest schema is not migrated yet", retry_after=5.0) from None

    async def check(self) -> None:
        """Health probe: connected, and the ingest schema exists."""
        await self.db.ping()
        async with self.db.pool.acquire(timeout=2) as conn:
            if not await conn.fetchval(sql.SCHEMA_READY.sql, timeout=2):
                raise Unavailable("the ingest schema is not migrated yet")
