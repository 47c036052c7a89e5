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
players as HLL sketches, or exact sets where the hll extension is absent) and ``top`` (each
player's hours in ``player_hours``, its only per-player state, and each hour's top ``TOP_K`` in
``top_players_1h``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

FAMILIES = ("stats", "top")  # the order _FOLDS lists them in
#: Players kept per hour in ``top_players_1h`` (also in migration 0007).
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


# Per (hour, player): the exact count and first/last time into player_hours, a player's only
# per-player state. A player with neither an hour before this statement (its sub-selects see the
# table as it was) nor expired hours in player_summary (first_seen set) is new to player_count.
# Each touched hour's top list then takes the changed counts above its floor (its K-th count, 0
# while it holds fewer; at most K of them, the highest), and is cut back to K (ties by player_id),
# so a player left out never has more than the floor: the bound rankings state. (Equal to the floor
# is not let in: with flat counts nearly every player ties with it.) Per action type nothing is kept
# per player: typed rankings count raw rows.
TOP = "WITH" + _pick("top") + f""",
per_hour AS (
    SELECT date_trunc('hour', time, 'UTC') AS bucket, player_id, count(*) AS actions,
           min(time) AS first_time, max(time) AS last_time
    FROM raw GROUP BY 1, 2
), hours AS (
    INSERT INTO player_hours AS t (player_id, bucket, actions, first_time, last_time)
    SELECT player_id, bucket, actions, first_time, last_time FROM per_hour ORDER BY 1, 2
    ON CONFLICT (player_id, bucket) DO UPDATE SET
        actions = t.actions + EXCLUDED.actions,
        first_time = least(t.first_time, EXCLUDED.first_time), last_time = greatest(t.last_time, EXCLUDED.last_time)
    RETURNING bucket, player_id, actions, xmax = 0 AS inserted
), new_players AS (
    UPDATE player_count c SET players = c.players + n.added
    FROM (SELECT count(DISTINCT h.player_id) AS added FROM hours h
          WHERE h.inserted AND NOT EXISTS (SELECT 1 FROM player_hours p WHERE p.player_id = h.player_id)
            AND NOT EXISTS (SELECT 1 FROM player_summary s WHERE s.player_id = h.player_id AND s.first_seen IS NOT NULL)) n
    WHERE n.added > 0
), kept AS MATERIALIZED (
    SELECT bucket, player_id, actions FROM top_players_1h
    WHERE action_type = '' AND bucket IN (SELECT DISTINCT bucket FROM per_hour)
), floors AS (
    SELECT b.bucket, CASE WHEN count(k.player_id) >= {TOP_K} THEN min(k.actions) ELSE 0 END AS floor
    FROM (SELECT DISTINCT bucket FROM per_hour) b LEFT JOIN kept k ON k.bucket = b.bucket
    GROUP BY 1
), offers AS MATERIALIZED (  -- at most K per hour can stay: a bounded top-K sort, not a full one
    SELECT o.* FROM floors f CROSS JOIN LATERAL (
        SELECT h.bucket, h.player_id, h.actions FROM hours h
        WHERE h.bucket = f.bucket AND h.actions > f.floor
        ORDER BY h.actions DESC, h.player_id LIMIT {TOP_K}) o
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY bucket ORDER BY actions DESC, player_id) AS rank
    FROM (SELECT o.bucket, o.player_id, o.actions, true AS offered, k.player_id IS NOT NULL AS listed
          FROM offers o LEFT JOIN kept k ON k.bucket = o.bucket AND k.player_id = o.player_id
          UNION ALL
          SELECT k.bucket, k.player_id, k.actions, false, true FROM kept k
          WHERE NOT EXISTS (SELECT 1 FROM offers o WHERE o.bucket = k.bucket AND o.player_id = k.player_id)) entries
), entered AS (
    INSERT INTO top_players_1h AS t (bucket, action_type, player_id, actions)
    SELECT bucket, '', player_id, actions FROM ranked WHERE offered AND rank <= {TOP_K}
    ORDER BY 1, 3
    ON CONFLICT (bucket, action_type, player_id) DO UPDATE SET actions = EXCLUDED.actions
), dropped AS (
    DELETE FROM top_players_1h t USING ranked r
    WHERE r.listed AND r.rank > {TOP_K} AND t.bucket = r.bucket AND t.action_type = '' AND t.player_id = r.player_id
)
""" + _RESULT

# Queue depth per family: what the ops metrics report as the materializer's lag.
QUEUES = " UNION ALL ".join(
    f"SELECT '{f}' AS family, count(*)::bigint AS batches, coalesce(sum(rows), 0)::bigint AS rows, "
    f"min(enqueued_at) AS oldest, now() AS now FROM {queue(f)}" for f in FAMILIES)

HAS_HLL = "SELECT to_regclass('player_sketch_1min') IS NOT NULL"

#: Tables expired after the retention period, by their bucket column (player_hours: EXPIRE_HOURS).
BUCKETED = ("action_type_stats_1min", "action_type_stats_1h", "player_sketch_1min", "player_sketch_1h",
            "players_seen_1min", "players_seen_1h", "top_players_1h", "violation_counts_1h")

# Hours past retention leave player_hours into the player's summary, so a summary stays all-time.
EXPIRE_HOURS = """
WITH gone AS (
    DELETE FROM player_hours WHERE bucket < now() - make_interval(days => $1::int)
    RETURNING player_id, actions, first_time, last_time
), per AS (
    SELECT player_id, sum(actions) AS actions, min(first_time) AS first_seen, max(last_time) AS last_seen
    FROM gone GROUP BY player_id
)
INSERT INTO player_summary AS p (player_id, first_seen, last_seen, action_count)
SELECT player_id, first_seen, last_seen, actions FROM per ORDER BY player_id
ON CONFLICT (player_id) DO UPDATE SET
    action_count = p.action_count + EXCLUDED.action_count,
    first_seen = least(p.first_seen, EXCLUDED.first_seen), last_seen = greatest(p.last_seen, EXCLUDED.last_seen),
    updated_at = now()"""


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
    return await conn.fetchrow(TOP, max_batches)


_FOLDS = {"stats": _fold_stats, "top": _fold_top}


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
    """Delete aggregate buckets older than the retention period (like the raw rows); player hours
    that old move into their players' summaries instead (EXPIRE_HOURS)."""
    present = await conn.fetch("SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL",
                               list(BUCKETED))
    for r in present:
        await conn.execute(f"DELETE FROM {r['t']} WHERE bucket < now() - make_interval(days => $1::int)",
                           retention_days)
    async with conn.transaction():  # under the top fold's lock: its new-player check reads both tables
        await conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", _LOCK_KEYS["top"])
        await conn.execute(EXPIRE_HOURS, retention_days)
