"""Versioned, idempotent schema migrations for the ingest database.

How the runner applies them (other runners, e.g. the PGlite+TimescaleDB test, must do the same):

1. ``CREATE TABLE IF NOT EXISTS schema_migrations(version int primary key, name text,
   applied_at timestamptz)``.
2. Capability: ``SELECT extname FROM pg_extension WHERE extname = 'timescaledb'``; when absent,
   ``CREATE EXTENSION IF NOT EXISTS timescaledb`` is tried (inside a savepoint) in case the server
   has it available; failure just means plain PostgreSQL.
3. For each version in ``MIGRATIONS`` not yet in ``schema_migrations``, in order: run the file
   (``migrations/NNNN_<name>.sql``; for versions with a ``timescale``/``plain`` variant, the one that
   matches the capability) and insert its row, all in one transaction. The whole run holds an
   advisory lock so concurrent ``migrate`` calls serialise.
4. TimescaleDB only: ``tune_timescale`` re-applies the compression policy with the configured age.

Every statement is also written to be re-runnable (``IF NOT EXISTS``), so applying a file twice is
harmless. The service refuses to serve while ``schema_version()`` is below ``LATEST``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("banhammer.ingest.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x62616E68  # "banh": serialises concurrent migrate runs


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variants: bool = False  # True: NNNN_timescale.sql / NNNN_plain.sql by capability

    def file(self, timescale: bool) -> Path:
        if self.variants:
            return MIGRATIONS_DIR / f"{self.version:04d}_{'timescale' if timescale else 'plain'}.sql"
        return MIGRATIONS_DIR / f"{self.version:04d}_{self.name}.sql"


MIGRATIONS = (
    Migration(1, "base"),
    Migration(2, "storage", variants=True),
    Migration(3, "read_indexes", variants=True),
    Migration(8, "rules"),
)
LATEST = MIGRATIONS[-1].version

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def has_timescale(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") is not None


async def _enable_timescale(conn: asyncpg.Connection) -> bool:
    if await has_timescale(conn):
        return True
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:  # not installed / not preloaded: plain PostgreSQL it is
        log.info("timescaledb unavailable, using plain PostgreSQL", extra={"reason": str(exc).splitlines()[0]})
        return False
    return True


async def schema_version(conn: asyncpg.Connection) -> int:
    """Highest applied version; 0 on an empty database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")


async def migrate(conn: asyncpg.Connection, *, compress_after_days: int = 7) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_LEDGER)
        timescale = await _enable_timescale(conn)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in MIGRATIONS:
            if m.version in done:
                continue
            path = m.file(timescale)
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                   m.version, path.stem)
            applied.append(m.version)
            log.info("migration applied", extra={"version": m.version, "file": path.name})
        if timescale:
            await tune_timescale(conn, compress_after_days)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def tune_timescale(conn: asyncpg.Connection, compress_after_days: int) -> None:
    """Re-apply the compression policy with the configured age (the SQL file uses 7 days)."""
    async with conn.transaction():
        await conn.execute("SELECT remove_compression_policy('player_actions_ts', if_exists => true)")
        await conn.execute("SELECT add_compression_policy('player_actions_ts', make_interval(days => $1))",
                           compress_after_days)
