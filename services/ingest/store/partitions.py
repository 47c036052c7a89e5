"""Plain PostgreSQL only: daily range partitions created ahead, and dropped after retention.

TimescaleDB does both itself (chunks and retention policies). Partition names carry their day
(``player_actions_ts_p20250131``) so expiry needs no catalog parsing of bounds.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import asyncpg

log = logging.getLogger("banhammer.ingest.partitions")

# Tables partitioned by day when they exist (a later migration may add or drop aggregates).
PARTITIONED = ("player_actions_ts", "action_stats_1min", "action_stats_1h")
_LOCK_KEY = 0x62616E70  # serialises partition DDL between ingest replicas

# Rollup rows are updated in place by every group that touches their key. Room left in each page
# lets those updates be HOT (no index writes; the benchmark's write_costs showed the two rollup
# upserts at ~20 µs/row with it and 32-44 µs/row, growing, without). Raw rows are never updated.
STORAGE = {"action_stats_1min": " WITH (fillfactor = 70)", "action_stats_1h": " WITH (fillfactor = 70)"}

NO_PARTITION = "23514"  # "no partition of relation ... found for row" (check_violation)


def _name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


async def partitioned(conn: asyncpg.Connection) -> list[str]:
    """The PARTITIONED tables this database has, as partitioned tables."""
    return [r["relname"] for r in await conn.fetch(
        "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND relkind = 'p' "
        "AND relnamespace = current_schema()::regnamespace ORDER BY relname", list(PARTITIONED))]


async def ensure_days(conn: asyncpg.Connection, days: list[date]) -> int:
    """Create the missing daily partitions for ``days`` on every partitioned table."""
    created = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        tables = await partitioned(conn)
        existing = {r["relname"] for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = ANY($1::regclass[])", tables)}
        for table in tables:
            for day in days:
                name = _name(table, day)
                if name in existing:
                    continue
                start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
                # Identifiers come from constants and a date, values from datetimes: no user input.
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
                    f"{STORAGE.get(table, '')}")
                created += 1
    if created:
        log.info("partitions created", extra={"count": created})
    return created


def days_between(first: datetime, last: datetime) -> list[date]:
    d, end = first.astimezone(timezone.utc).date(), last.astimezone(timezone.utc).date()
    out = []
    while d <= end:
        out.append(d)
        d += timedelta(days=1)
    return out


async def ensure_window(conn: asyncpg.Connection, late_seconds: float, now: datetime | None = None) -> int:
    """Partitions for every day an accepted event can fall on, plus two days ahead."""
    now = now or datetime.now(timezone.utc)
    return await ensure_days(conn, days_between(now - timedelta(seconds=late_seconds), now + timedelta(days=2)))


async def expire(conn: asyncpg.Connection, retention_days: int, now: datetime | None = None) -> list[str]:
    """Drop partitions whose whole day is older than the retention period."""
    now = now or datetime.now(timezone.utc)
    cutoff = (now - timedelta(days=retention_days)).date()
    dropped = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        rows = await conn.fetch(
            "SELECT c.relname, p.relname AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent = ANY($1::regclass[])", await partitioned(conn))
        for r in rows:
            suffix = r["relname"][len(r["parent"]) + 2:]
            try:
                day = datetime.strptime(suffix, "%Y%m%d").date()
            except ValueError:
                continue  # not one of ours
            if day < cutoff:
                await conn.execute(f'DROP TABLE IF EXISTS "{r["relname"]}"')
                dropped.append(r["relname"])
    if dropped:
        log.info("partitions dropped", extra={"partitions": dropped})
    return dropped


async def expire_event_ids(conn: asyncpg.Connection, retention_days: int, chunk: int = 50_000) -> int:
    """Forget idempotency keys past retention, in chunks (short transactions)."""
    total = 0
    while True:
        status = await conn.execute(
            "DELETE FROM action_event_ids WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM action_event_ids WHERE time < now() - make_interval(days => $1) LIMIT $2))",
            retention_days, chunk)
        n = int(status.split()[-1])
        total += n
        if n < chunk:
            return total


async def expire_batch_keys(conn: asyncpg.Connection, retention_seconds: float, chunk: int = 50_000) -> int:
    """Forget producer batch keys past their retention (in chunks), then producers left without any."""
    total = 0
    while True:
        status = await conn.execute(
            "DELETE FROM ingest_producer_batches WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM ingest_producer_batches WHERE committed_at < now() - make_interval(secs => $1) "
            "LIMIT $2))", retention_seconds, chunk)
        n = int(status.split()[-1])
        total += n
        if n < chunk:
            break
    await conn.execute(
        "DELETE FROM ingest_producers p WHERE updated_at < now() - make_interval(secs => $1) "
        "AND NOT EXISTS (SELECT 1 FROM ingest_producer_batches b WHERE b.producer_id = p.producer_id)",
        retention_seconds)
    return total
