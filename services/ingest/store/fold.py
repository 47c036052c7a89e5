"""The materializer's SQL: fold queued batches into the aggregates, exactly once.

The writer commits a batch's raw rows (one ``batch_id``) together with one row in every
``ingest_pending_<family>`` queue. A fold of a family, in one transaction:

1. takes the family's advisory lock (``pg_try_advisory_xact_lock``; busy: another replica is
   folding it, so this one skips the round);
2. deletes up to ``max_batches`` queue rows and aggregates exactly their raw rows
   (``batch_id = ANY(...)``; event time does not matter, so hours-late rows land in their own
   buckets) into the family's tables;
3. commits. A fold that dies before its commit leaves the queue rows and aggregates as they were;
   a committed batch has left the queue, so no fold sees it again.

Families (``FAMILIES``): ``stats`` (per minute/hour and action type: count, sum, min, max; distinct
players as HLL sketches, or exact sets where the hll extension is absent), ``top`` (exact per
player per hour counts and each hour's top ``TOP_K``), ``summary`` (``player_summary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

FAMILIES = ("stats", "top", "summary")  # the order _FOLDS lists them in
#: Players kept per (hour, action type) in ``top_players_1h`` (also in migration 0007).
TOP_K = 2000
#: HLL parameters (log2m, regwidth): 16,384 registers, standard error 0.81% (migration 0006).
HLL_PARAMS = "14, 5"
_LOCK_KEYS = {family: 0x62616E66_00 + i for i, family in enumerate(FAMILIES)}  # "banf" + family


def queue(family: str) -> str:
    return f"ingest_pending_{family}"


def _pick(family: str) -> str:
    """CTEs ``picked`` (the queue rows taken, deleted) and ``raw`` (their rows). The time bounds
    only let PostgreSQL skip partitions/chunks; the batch ids decide."""
    q = queue(family)
    return f"""
picked AS (
    DELETE FROM {q} WHERE batch_id IN (SELECT batch_id FROM {q} ORDER BY batch_id LIMIT $1)
    RETURNING batch_id, rows, min_time, max_time
), raw AS (
    SELECT time, player_id, action_type, value FROM player_actions_ts
    WHERE batch_id = ANY(ARRAY(SELECT batch_id FROM picked))
      AND time >= (SELECT min(min_time) FROM picked) AND time <= (SELECT max(max_time) FROM picked)
)"""


_RESULT = "SELECT count(*)::bigint AS batches, coalesce(sum(rows), 0)::bigint AS rows FROM picked"

_TYPE_STATS = """
{name} AS (
    INSERT INTO {table} AS t (bucket, action_type, actions, value_sum, value_min, value_max)
    SELECT {bucket}, action_type, sum(actions), sum(value_sum), min(value_min), max(value_max)
    FROM per_minute GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, action_type) DO UPDATE SET
        actions = t.actions + EXCLUDED.actions, value_sum = t.value_sum + EXCLUDED.value_sum,
        value_min = least(t.value_min, EXCLUDED.value_min), value_max = greatest(t.value_max, EXCLUDED.value_max)
)"""

_SKETCH = f"""
{{name}} AS (
    INSERT INTO {{table}} AS t (bucket, players)
    SELECT date_trunc('{{unit}}', time, 'UTC'), hll_add_agg(hll_hash_text(player_id), {HLL_PARAMS})
    FROM raw GROUP BY 1 ORDER BY 1
    ON CONFLICT (bucket) DO UPDATE SET players = hll_union(t.players, EXCLUDED.players)
)"""

_SEEN = """
{name} AS (
    INSERT INTO {table} (bucket, player_id)
    SELECT DISTINCT date_trunc('{unit}', time, 'UTC'), player_id FROM raw ORDER BY 1, 2
    ON CONFLICT DO NOTHING
)"""


def stats_statement(hll: bool) -> str:
    players = _SKETCH if hll else _SEEN
    tables = ("player_sketch_1min", "player_sketch_1h") if hll else ("players_seen_1min", "players_seen_1h")
    return "WITH" + ",".join([
        _pick("stats"),
        """
per_minute AS (
    SELECT date_trunc('minute', time, 'UTC') AS bucket, action_type, count(*) AS actions,
           sum(value) AS value_sum, min(value) AS value_min, max(value) AS value_max
    FROM raw GROUP BY 1, 2
)""",
        _TYPE_STATS.format(name="minutes", table="action_type_stats_1min", bucket="bucket"),
        _TYPE_STATS.format(name="hours", table="action_type_stats_1h", bucket="date_trunc('hour', bucket, 'UTC')"),
        players.format(name="players_minute", table=tables[0], unit="minute"),
        players.format(name="players_hour", table=tables[1], unit="hour"),
    ]) + "\n" + _RESULT


# Per (hour, player, action type) and per (hour, player) (action_type ''), added to the exact
# counts; every changed count above its (hour, type)'s K-th (-1 while fewer than K are kept) enters
# the top list. Counts only grow and the K-th never falls, so a player left out never has more than
# the K-th: that is the bound rankings state. (Equal to the K-th is not let in: with flat counts
# nearly every player ties with it, and entering only to be trimmed again costs a write each.)
TOP = "WITH" + _pick("top") + f""",
per AS (
    SELECT date_trunc('hour', time, 'UTC') AS bucket, player_id, coalesce(action_type, '') AS action_type,
           count(*) AS actions
    FROM raw
    GROUP BY GROUPING SETS ((date_trunc('hour', time, 'UTC'), player_id, action_type),
                            (date_trunc('hour', time, 'UTC'), player_id))
), counts AS (
    INSERT INTO player_hour_counts AS t (player_id, action_type, bucket, actions)
    SELECT player_id, action_type, bucket, actions FROM per ORDER BY 1, 2, 3
    ON CONFLICT (player_id, action_type, bucket) DO UPDATE SET actions = t.actions + EXCLUDED.actions
    RETURNING bucket, action_type, player_id, actions
), lists AS (SELECT DISTINCT bucket, action_type FROM per
), kth AS (
    SELECT l.bucket, l.action_type,
           CASE WHEN count(c.player_id) >= {TOP_K} THEN min(c.actions) ELSE -1 END AS floor
    FROM lists l LEFT JOIN top_players_1h c ON c.bucket = l.bucket AND c.action_type = l.action_type
    GROUP BY 1, 2
), entered AS (
    INSERT INTO top_players_1h AS t (bucket, action_type, player_id, actions)
    SELECT n.bucket, n.action_type, n.player_id, n.actions
    FROM counts n JOIN kth k ON k.bucket = n.bucket AND k.action_type = n.action_type
    WHERE n.actions > k.floor
    ORDER BY 1, 2, 3
    ON CONFLICT (bucket, action_type, player_id) DO UPDATE SET actions = EXCLUDED.actions
)
SELECT (SELECT count(*) FROM picked)::bigint AS batches, (SELECT coalesce(sum(rows), 0) FROM picked)::bigint AS rows,
       coalesce((SELECT array_agg(bucket) FROM lists), '{{}}') AS buckets,
       coalesce((SELECT array_agg(action_type) FROM lists), '{{}}') AS types"""

# Back to exactly K per touched list (ties at the K-th broken by player_id, like the rankings).
TRIM_TOP = f"""
DELETE FROM top_players_1h t USING (
    SELECT bucket, action_type, player_id FROM (
        SELECT bucket, action_type, player_id,
               row_number() OVER (PARTITION BY bucket, action_type ORDER BY actions DESC, player_id) AS rank
        FROM top_players_1h
        WHERE (bucket, action_type) IN (SELECT * FROM unnest($1::timestamptz[], $2::text[]))) ranked
    WHERE rank > {TOP_K}) x
WHERE t.bucket = x.bucket AND t.action_type = x.action_type AND t.player_id = x.player_id"""

SUMMARY = "WITH" + _pick("summary") + """,
per AS (
    SELECT player_id, min(time) AS first_seen, max(time) AS last_seen, count(*) AS actions
    FROM raw GROUP BY player_id
), summary AS (
    INSERT INTO player_summary AS p (player_id, first_seen, last_seen, action_count, updated_at)
    SELECT player_id, first_seen, last_seen, actions, now() FROM per ORDER BY player_id
    ON CONFLICT (player_id) DO UPDATE SET
        first_seen = least(p.first_seen, EXCLUDED.first_seen),
        last_seen = greatest(p.last_seen, EXCLUDED.last_seen),
        action_count = p.action_count + EXCLUDED.action_count,
        updated_at = now()
)
""" + _RESULT

# Queue depth per family: what the ops metrics report as the materializer's lag.
QUEUES = " UNION ALL ".join(
    f"SELECT '{f}' AS family, count(*)::bigint AS batches, coalesce(sum(rows), 0)::bigint AS rows, "
    f"min(enqueued_at) AS oldest, now() AS now FROM {queue(f)}" for f in FAMILIES)

HAS_HLL = "SELECT to_regclass('player_sketch_1min') IS NOT NULL"

#: Tables expired after the retention period, by their bucket column.
BUCKETED = ("action_type_stats_1min", "action_type_stats_1h", "player_sketch_1min", "player_sketch_1h",
            "players_seen_1min", "players_seen_1h", "player_hour_counts", "top_players_1h", "violation_counts_1h")


@dataclass(frozen=True)
class Folded:
    batches: int
    rows: int
    busy: bool = False  # another replica held the family's lock: nothing was done


@dataclass(frozen=True)
class Queue:
    family: str
    batches: int
    rows: int
    oldest: datetime | None  # enqueued_at of the oldest batch waiting
    lag_seconds: float  # its age (0 when empty)


async def has_hll(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(HAS_HLL))


async def _fold_stats(conn: asyncpg.Connection, max_batches: int, hll: bool):
    return await conn.fetchrow(stats_statement(hll), max_batches)


async def _fold_top(conn: asyncpg.Connection, max_batches: int, hll: bool):
    row = await conn.fetchrow(TOP, max_batches)
    if row["buckets"]:
        await conn.execute(TRIM_TOP, list(row["buckets"]), list(row["types"]))
    return row


async def _fold_summary(conn: asyncpg.Connection, max_batches: int, hll: bool):
    return await conn.fetchrow(SUMMARY, max_batches)


_FOLDS = {"stats": _fold_stats, "top": _fold_top, "summary": _fold_summary}


FOLD_WORK_MEM = "256MB"  # per fold transaction (one per family at a time, whatever the replicas)


async def fold(conn: asyncpg.Connection, family: str, *, max_batches: int = 500, hll: bool) -> Folded:
    """Fold up to ``max_batches`` queued batches of ``family`` (one transaction)."""
    run = _FOLDS[family]
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1::bigint)", _LOCK_KEYS[family]):
            return Folded(0, 0, busy=True)
        # A catch-up fold aggregates millions of rows: in memory, not in spill files.
        await conn.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        row = await run(conn, max_batches, hll)
    return Folded(row["batches"], row["rows"])


async def drain(conn: asyncpg.Connection, families: tuple[str, ...] = FAMILIES, *,
                max_batches: int = 500) -> dict[str, int]:
    """Fold until every queue of ``families`` is empty (tests, benchmarks, catching up);
    returns the rows folded per family. A busy family is retried until the other folder is done."""
    hll = await has_hll(conn)
    folded = dict.fromkeys(families, 0)
    for family in families:
        while True:
            done = await fold(conn, family, max_batches=max_batches, hll=hll)
            folded[family] += done.rows
            if not done.busy and done.batches == 0:
                break
    return folded


async def queues(conn: asyncpg.Connection) -> list[Queue]:
    out = []
    for r in await conn.fetch(QUEUES):
        lag = 0.0 if r["oldest"] is None else max(0.0, (r["now"] - r["oldest"]).total_seconds())
        out.append(Queue(r["family"], r["batches"], r["rows"], r["oldest"], lag))
    return out


async def expire(conn: asyncpg.Connection, retention_days: int) -> None:
    """Delete aggregate buckets older than the retention period (like the raw rows)."""
    present = await conn.fetch("SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL",
                               list(BUCKETED))
    for r in present:
        await conn.execute(f"DELETE FROM {r['t']} WHERE bucket < now() - make_interval(days => $1::int)",
                           retention_days)
