"""Appending actions the way ingest's append-only write path does (issue 11), for tests and benches.

One call = one write transaction: the rows get one ``batch_id`` (``nextval('ingest_batch_id_seq')``)
and every ``ingest_pending_<family>`` queue gets one row for the batch. Swap this for the real
writer once it lands; the contract is the same. Works over asyncpg and over the PGlite connection
(``tests.timescale.pglite.Connection``): parameters are arrays, one statement per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

QUEUES = r"""SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'ingest_pending\_%'
ORDER BY tablename"""

_INSERT = """
INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id, batch_id)
SELECT t, p, a, v, m::jsonb, e, $7::bigint
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[]) AS r(t, p, a, v, m, e)"""


async def append(conn, rows: Sequence[tuple], *, copy: bool = False) -> int:
    """Store ``rows`` (time, player_id, action_type, value[, metadata json text[, event_id]]) as one
    batch; returns its batch id. ``copy``: COPY the rows (asyncpg only; the bench's bulk load)."""
    rows = [tuple(r) + (None,) * (6 - len(r)) for r in rows]
    times: list[datetime] = [r[0] for r in rows]
    queues = [r["tablename"] for r in await conn.fetch(QUEUES)]
    async with conn.transaction():
        batch = await conn.fetchval("SELECT nextval('ingest_batch_id_seq')")
        if copy:
            await conn.copy_records_to_table(
                "player_actions_ts", records=[(*r, batch) for r in rows],
                columns=["time", "player_id", "action_type", "value", "metadata", "event_id", "batch_id"])
        else:
            await conn.execute(_INSERT, *([r[i] for r in rows] for i in range(6)), batch)
        for q in queues:
            await conn.execute(f"INSERT INTO {q} (batch_id, rows, min_time, max_time) "
                               "VALUES ($1::bigint, $2::int, $3::timestamptz, $4::timestamptz)",
                               batch, len(rows), min(times), max(times))
    return batch
