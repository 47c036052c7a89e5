"""The ingest schema: ``migrations/NNNN_name.sql``, applied by the runtime's migration runner
(checksums, advisory lock; see services/runtime/migrations.py).

Versions that differ by capability come as ``NNNN_timescale.sql`` / ``NNNN_plain.sql``: ``choose``
enables TimescaleDB when the server has it (``CREATE EXTENSION`` inside a savepoint; failure just
means plain PostgreSQL). After migrating on TimescaleDB the compression policy is re-applied with
the configured age (the SQL file uses 7 days). Every statement is also re-runnable (``IF NOT
EXISTS``). The service refuses to serve while ``schema_version()`` is below ``LATEST``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from services.runtime.migrations import Migrations

log = logging.getLogger("banhammer.ingest.migrate")

MIGRATIONS = Migrations(Path(__file__).with_name("migrations"), lock_key=0x62616E68,  # "banh"
                        variants=("timescale", "plain"))
LATEST = MIGRATIONS.latest


async def has_timescale(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") is not None


async def _enable_timescale(conn: asyncpg.Connection) -> str:
    if await has_timescale(conn):
        return "timescale"
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:  # not installed / not preloaded: plain PostgreSQL it is
        log.info("timescaledb unavailable, using plain PostgreSQL", extra={"reason": str(exc).splitlines()[0]})
        return "plain"
    return "timescale"


async def schema_version(conn: asyncpg.Connection) -> int:
    """Highest applied version; 0 on an empty database."""
    return await MIGRATIONS.current_version(conn)


async def migrate(conn: asyncpg.Connection, *, compress_after_days: int = 7) -> list[int]:
    """Verify what was applied, apply what is pending; returns the versions applied by this call."""
    async def after(conn: asyncpg.Connection, variant: str | None) -> None:
        if variant == "timescale":
            await tune_timescale(conn, compress_after_days)

    return await MIGRATIONS.upgrade(conn, choose=_enable_timescale, after=after)


async def tune_timescale(conn: asyncpg.Connection, compress_after_days: int) -> None:
    """Re-apply the compression policy with the configured age (the SQL file uses 7 days)."""
    async with conn.transaction():
        await conn.execute("SELECT remove_compression_policy('player_actions_ts', if_exists => true)")
        await conn.execute("SELECT add_compression_policy('player_actions_ts', make_interval(days => $1))",
                           compress_after_days)
