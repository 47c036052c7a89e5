"""The write statement: de-duplication by event_id, raw insert, rollups and summary, in one
round trip.

One call commits a group of batches (group commit) as a single statement (so a single implicit
transaction): the rows travel as column arrays and are ``unnest``ed; event ids are claimed in
``action_event_ids`` (first occurrence in the group wins; ON CONFLICT DO NOTHING also waits for a
concurrent writer of the same key, so exactly one of two racing retries stores the action); only
claimed rows and rows without an event id are ``kept``, and only kept rows reach
``player_actions_ts``, the rollups (plain PostgreSQL) and ``player_summary``. Every multi-row
upsert is sorted by its key so concurrent writers lock rows in the same order. The statement
returns the kept count per batch and, for the detector, a summary per (player, action type).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

from ..actions import Row

_INPUT = """
input AS (
    SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[])
        WITH ORDINALITY AS t(batch, time, player_id, action_type, value, metadata, event_id, ord)
)"""

_KEEP_ALL = """
kept AS (SELECT * FROM input)"""

_CLAIM = """
firsts AS (
    SELECT DISTINCT ON (player_id COLLATE "C", event_id COLLATE "C") *
    FROM input WHERE event_id IS NOT NULL
    ORDER BY player_id COLLATE "C", event_id COLLATE "C", ord
), claimed AS (
    INSERT INTO action_event_ids (player_id, event_id, time)
    SELECT player_id, event_id, time FROM firsts ORDER BY player_id COLLATE "C", event_id COLLATE "C"
    ON CONFLICT DO NOTHING
    RETURNING player_id, event_id
), kept AS (
    SELECT * FROM input WHERE event_id IS NULL
    UNION ALL
    SELECT f.* FROM firsts f JOIN claimed c ON c.player_id = f.player_id AND c.event_id = f.event_id
)"""

_RAW = """
raw AS (
    INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id)
    SELECT time, player_id, action_type, value, metadata::jsonb, event_id FROM kept
)"""

# Kept rows are aggregated once per (minute, player, action type); the hourly rollup, the summary
# and the detector's per-player result are all derived from that (usually much smaller) set
# instead of re-aggregating ``kept``. Buckets are UTC whatever the session's TimeZone (a zone with
# a half-hour offset would otherwise shift the hourly buckets the query service reads as UTC).
_PER_MINUTE = """
per_minute AS (
    SELECT date_trunc('minute', time, 'UTC') AS bucket, player_id, action_type, count(*) AS actions,
           sum(value) AS value_sum, max(value) AS value_max, min(value) AS value_min,
           min(time) AS first_time, max(time) AS last_time
    FROM kept GROUP BY 1, 2, 3
)"""

_ROLLUP = """
{name} AS (
    INSERT INTO {table} AS r (bucket, player_id, action_type, actions, value_sum, value_max)
    SELECT {bucket}, player_id, action_type, sum(actions), sum(value_sum), max(value_max)
    FROM per_minute GROUP BY 1, 2, 3 ORDER BY 1, player_id COLLATE "C", action_type COLLATE "C"
    ON CONFLICT (bucket, player_id, action_type) DO UPDATE SET
        actions = r.actions + EXCLUDED.actions,
        value_sum = r.value_sum + EXCLUDED.value_sum,
        value_max = greatest(r.value_max, EXCLUDED.value_max)
)"""
_ROLLUPS = ",".join([_ROLLUP.format(name="minutes", table="action_stats_1min", bucket="bucket"),
                     _ROLLUP.format(name="hours", table="action_stats_1h", bucket="date_trunc('hour', bucket, 'UTC')")])

_SUMMARY = """
summary AS (
    INSERT INTO player_summary AS p (player_id, first_seen, last_seen, action_count, updated_at)
    SELECT player_id, min(first_time), max(last_time), sum(actions), now() FROM per_minute
    GROUP BY player_id ORDER BY player_id COLLATE "C"
    ON CONFLICT (player_id) DO UPDATE SET
        first_seen = least(p.first_seen, EXCLUDED.first_seen),
        last_seen = greatest(p.last_seen, EXCLUDED.last_seen),
        action_count = p.action_count + EXCLUDED.action_count,
        updated_at = now()
)"""

# Rows with batch NULL: what the detector needs, one per (player, action type).
# Rows with batch set: how many of that batch's actions were kept.
_RESULT = """
SELECT NULL::int AS batch, sum(actions)::bigint AS n, player_id, action_type, min(first_time) AS first_time,
       max(last_time) AS last_time, min(value_min) AS min_value, max(value_max) AS max_value
FROM per_minute WHERE $8 GROUP BY player_id, action_type
UNION ALL
SELECT batch, count(*), NULL, NULL, NULL, NULL, NULL, NULL FROM kept GROUP BY batch"""


def statement(*, claim: bool, rollups: bool) -> str:
    ctes = [_INPUT, _CLAIM if claim else _KEEP_ALL, _RAW, _PER_MINUTE, *([_ROLLUPS] if rollups else []), _SUMMARY]
    return "WITH" + ",".join(ctes) + _RESULT


STATEMENTS = {(c, r): statement(claim=c, rollups=r) for c in (False, True) for r in (False, True)}


class Touched(NamedTuple):
    player_id: str
    action_type: str
    n: int
    first_time: datetime
    last_time: datetime
    min_value: float
    max_value: float


class GroupResult(NamedTuple):
    duplicates: list[int]  # per batch, in input order
    touched: list[Touched]
    failures: dict[int, BaseException] | None = None  # batch index -> error, when committed one by one


async def write_group(conn: asyncpg.Connection, batches: Sequence[Sequence[Row]], *,
                      rollups: bool, want_touched: bool) -> GroupResult:
    """Commit ``batches`` in one statement; returns per-batch duplicate counts."""
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    b_, t_, p_, a_, v_, m_, e_ = cols
    for b, rows in enumerate(batches):
        b_.extend([b] * len(rows))
        for r in rows:
            t_.append(r.time)
            p_.append(r.player_id)
            a_.append(r.action_type)
            v_.append(r.value)
            m_.append(r.metadata)
            e_.append(r.event_id)
    claim = any(e is not None for e in e_)
    records = await conn.fetch(STATEMENTS[claim, rollups], *cols, want_touched)
    kept = [0] * len(batches)
    touched = []
    for rec in records:
        if rec["batch"] is None:
            touched.append(Touched(rec["player_id"], rec["action_type"], rec["n"], rec["first_time"],
                                   rec["last_time"], rec["min_value"], rec["max_value"]))
        else:
            kept[rec["batch"]] = rec["n"]
    return GroupResult([len(rows) - k for rows, k in zip(batches, kept)], touched)


# TimescaleDB: materialize the continuous aggregates over a range written below their watermark
# (an import of history); their refresh policies only look back a few hours. Not in a transaction.
REFRESH_AGGREGATES = (
    "CALL refresh_continuous_aggregate('action_stats_1min', $1::timestamptz, $2::timestamptz)",
    "CALL refresh_continuous_aggregate('action_stats_1h', $1::timestamptz, $2::timestamptz)",
)
