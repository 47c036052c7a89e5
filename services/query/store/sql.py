"""Every SQL statement of the query service, in one place.

Statements are written with named parameters (``:b0``) and compiled to ``$n``; ``Statement.params``
lists the names in ``$n`` order and ``Statement.args(values)`` builds the argument tuple. Every
parameter carries an explicit cast, so the same text runs through asyncpg and through other
drivers (the PGlite+TimescaleDB test path in ``tests/timescale/`` passes ISO strings).

Window statements take the six boundaries of ``services.query.windows.Split`` (``b0``..``b5``):
raw rows only at the ragged edges (each under a minute), per-minute aggregates for whole minutes,
per-hour ones for whole hours, plus the raw rows of batches ingest has not folded yet. None of the
aggregates has a row per player, so a window costs O(buckets) whatever the number of players.
They are the same tables, folded the same way, on TimescaleDB and on plain PostgreSQL, so the
answers agree. Distinct players come from HLL sketches where the hll extension exists (within 2%)
and from exact per-bucket player sets where it does not: ``sketches`` says which. Bucket arithmetic is UTC (``date_trunc(..., 'UTC')``), whatever the session's
TimeZone.

Text ordering uses ``COLLATE "C"`` (byte order), so keyset cursors behave the same on any database
collation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    params: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[p] for p in self.params)


def statement(name: str, text: str) -> Statement:
    """Compile ``:name`` placeholders to ``$n`` (first appearance order; repeats share a number)."""
    order: list[str] = []

    def number(m: re.Match) -> str:
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"${order.index(m.group(1)) + 1}"

    return Statement(name, _PARAM.sub(number, text).strip(), tuple(order))


# --- health ---------------------------------------------------------------------------------
SCHEMA_READY = statement("schema_ready", """
SELECT to_regclass('player_actions_ts') IS NOT NULL AND to_regclass('violations_ts') IS NOT NULL
   AND to_regclass('player_summary') IS NOT NULL AND to_regclass('action_type_stats_1min') IS NOT NULL
   AND to_regclass('top_players_1h') IS NOT NULL AND to_regclass('player_count') IS NOT NULL
   AND to_regclass('violation_counts_1h') IS NOT NULL AND to_regclass('player_hours') IS NOT NULL AS ready
""")

SET_TIMEOUT = statement("set_timeout", "SELECT set_config('statement_timeout', :timeout_ms::text, true)")


# --- windows over the aggregates ----------------------------------------------------------
# Pieces of a Split: raw rows at the ragged edges [b0,b1) and [b4,b5); per-minute aggregates for
# [b1,b2) and [b3,b4); per-hour ones for [b2,b3). Batches still queued for the fold
# (ingest_pending_stats) are in no aggregate yet: their raw rows inside [b1,b4) are added. Read in
# one REPEATABLE READ snapshot, a fold's dequeue and its aggregates are seen together or not at
# all, so counts are exact at any moment, fold lag or not.

#: HLL parameters of the sketches (services/ingest/store/fold.py HLL_PARAMS, migration 0006).
_HLL = "14, 5"

# The edges' raw rows, read once for both actions and players.
_EDGE_ROWS = """edges AS MATERIALIZED (
    SELECT time, player_id FROM player_actions_ts
    WHERE (time >= :b0::timestamptz AND time < :b1::timestamptz)
       OR (time >= :b4::timestamptz AND time < :b5::timestamptz)
)"""
_EDGES = """SELECT {cols} FROM edges"""

# The queued batches' rows, one batch_id index look-up per queued batch (its time range prunes the
# partitions/chunks). MATERIALIZED keeps the window's time conditions out of this scan: with them,
# the planner may pick a time range scan of a whole day instead.
_PENDING_JOIN = """(SELECT batch_id, min_time, max_time FROM {queue}) q
    CROSS JOIN LATERAL (
        SELECT time, player_id, action_type, value FROM player_actions_ts a
        WHERE a.batch_id = q.batch_id AND a.time >= q.min_time AND a.time <= q.max_time{extra}) a"""
_PENDING_ROWS = """pending AS MATERIALIZED (
    SELECT a.* FROM """ + _PENDING_JOIN.replace("{extra}", "") + """
)"""
_PENDING_STATS = """SELECT {cols} FROM pending WHERE time >= :b1::timestamptz AND time < :b4::timestamptz"""

_MINUTES = """SELECT {cols} FROM {table}
     WHERE (bucket >= :b1::timestamptz AND bucket < :b2::timestamptz)
        OR (bucket >= :b3::timestamptz AND bucket < :b4::timestamptz)"""

_HOURS = """SELECT {cols} FROM {table} WHERE bucket >= :b2::timestamptz AND bucket < :b3::timestamptz"""


def _raw(cols: str) -> str:
    """Raw rows no aggregate holds: the edges and the queued batches."""
    return f"{_EDGES.format(cols=cols)}\n    UNION ALL\n    {_PENDING_STATS.format(cols=cols)}"


_ACTIONS = f"""
    SELECT {{hour}} AS hour, count(*) AS actions FROM ({_raw("time")}) r GROUP BY 1
    UNION ALL
    {_MINUTES.format(cols="{hour_of_bucket}, actions", table="action_type_stats_1min")}
    UNION ALL
    {_HOURS.format(cols="{hour_of_bucket}, actions", table="action_type_stats_1h")}"""


def _players(hll: bool, hour: str, hour_of_bucket: str) -> str:
    """Per ``hour`` expression: an hll sketch (``s``) or the player ids (``player_id``)."""
    if hll:
        return f"""
    SELECT {hour} AS hour, hll_add_agg(hll_hash_text(player_id), {_HLL}) AS s FROM ({_raw("time, player_id")}) r GROUP BY 1
    UNION ALL
    {_MINUTES.format(cols=hour_of_bucket + ", players", table="player_sketch_1min")}
    UNION ALL
    {_HOURS.format(cols=hour_of_bucket + ", players", table="player_sketch_1h")}"""
    return f"""
    SELECT {hour} AS hour, player_id FROM ({_raw("time, player_id")}) r
    UNION ALL
    {_MINUTES.format(cols=hour_of_bucket + ", player_id", table="players_seen_1min")}
    UNION ALL
    {_HOURS.format(cols=hour_of_bucket + ", player_id", table="players_seen_1h")}"""


def _cardinality(hll: bool) -> str:
    return ("coalesce(round(hll_cardinality(hll_union_agg(s))), 0)::bigint" if hll
            else "count(DISTINCT player_id)::bigint")


@cache
def window_totals(hll: bool) -> Statement:
    """Actions (exact) and distinct players (HLL estimate, or exact) in one window."""
    whole = {"hour": "0", "hour_of_bucket": "0"}
    return statement(f"window_totals{'_hll' if hll else '_exact'}", f"""
WITH {_PENDING_ROWS.format(queue="ingest_pending_stats")}, {_EDGE_ROWS}
SELECT (SELECT coalesce(sum(actions), 0) FROM ({_ACTIONS.format(**whole)}) a)::bigint AS actions,
       (SELECT {_cardinality(hll)} FROM ({_players(hll, "0", "0")}) p) AS players
""")


@cache
def hourly_load(hll: bool) -> Statement:
    """Per UTC hour: actions (exact) and distinct players (HLL estimate, or exact)."""
    hour, of_bucket = "date_trunc('hour', time, 'UTC')", "date_trunc('hour', bucket, 'UTC')"
    return statement(f"hourly_load{'_hll' if hll else '_exact'}", f"""
WITH {_PENDING_ROWS.format(queue="ingest_pending_stats")}, {_EDGE_ROWS}
SELECT a.hour, a.actions, coalesce(p.players, 0)::bigint AS players
FROM (SELECT hour, sum(actions)::bigint AS actions
      FROM ({_ACTIONS.format(hour=hour, hour_of_bucket=of_bucket)}) a GROUP BY 1) a
LEFT JOIN (SELECT hour, {_cardinality(hll)} AS players
           FROM ({_players(hll, hour, of_bucket)}) p GROUP BY 1) p ON p.hour = a.hour
ORDER BY a.hour
""")


# The most active players of a window, from the per-hour top lists (top_players_1h): candidates
# are every player listed in an hour the window overlaps, plus the players of batches still
# queued for the top fold. A candidate's count is exact: whole hours from player_hours (and the
# queued batches' rows in them), partial hours [b0,b2) and [b3,b5) from raw rows through the
# (player_id, time) index. A player who is no candidate has at most the K-th count of every full
# list it overlaps (``unlisted_max``), so ranks whose count exceeds that are exact.
_TOP_K = 2000  # services/ingest/store/fold.py TOP_K
_TOP_COUNTS = f"""
{_PENDING_ROWS.format(queue="ingest_pending_top")}, window_pending AS (
    SELECT player_id, time FROM pending WHERE time >= :b0::timestamptz AND time < :b5::timestamptz
), lists AS MATERIALIZED (
    SELECT bucket, count(*) AS kept, min(actions) AS kth FROM top_players_1h
    WHERE bucket >= date_trunc('hour', :b0::timestamptz, 'UTC') AND bucket < :b5::timestamptz AND action_type = ''
    GROUP BY bucket
), candidates AS (
    SELECT player_id FROM top_players_1h
    WHERE bucket >= date_trunc('hour', :b0::timestamptz, 'UTC') AND bucket < :b5::timestamptz AND action_type = ''
    UNION
    SELECT player_id FROM window_pending
), pending_hours AS (  -- queued rows in the whole hours, per player (aggregated once)
    SELECT player_id, count(*) AS n FROM window_pending
    WHERE time >= :b2::timestamptz AND time < :b3::timestamptz GROUP BY player_id
), counts AS MATERIALIZED (
    SELECT c.player_id,
           (coalesce((SELECT sum(h.actions) FROM player_hours h
                      WHERE h.player_id = c.player_id AND h.bucket >= :b2::timestamptz AND h.bucket < :b3::timestamptz), 0)
            + (SELECT count(*) FROM player_actions_ts a
               WHERE a.player_id = c.player_id AND a.time >= :b0::timestamptz AND a.time < :b2::timestamptz)
            + (SELECT count(*) FROM player_actions_ts a
               WHERE a.player_id = c.player_id AND a.time >= :b3::timestamptz AND a.time < :b5::timestamptz)
            + coalesce(p.n, 0))::bigint AS action_count
    FROM candidates c LEFT JOIN pending_hours p ON p.player_id = c.player_id
), bound AS (
    SELECT coalesce(sum(kth) FILTER (WHERE kept >= {_TOP_K}), 0)::bigint AS unlisted_max FROM lists
)"""

# One action type: nothing is kept per player and type (that would cost the fold a row per action),
# so the window's raw rows are counted per player, exactly (O(actions of the window)).
_TOP_COUNTS_TYPED = """
counts AS MATERIALIZED (
    SELECT player_id, count(*)::bigint AS action_count FROM player_actions_ts
    WHERE time >= :b0::timestamptz AND time < :b5::timestamptz AND action_type = :action_type::text
    GROUP BY player_id
), bound AS (SELECT 0::bigint AS unlisted_max)"""


@cache
def top_players(typed: bool) -> Statement:
    """One page of the ranking by action count (ties: player_id in byte order), after the keyset
    cursor (:after_count, :after_player; the first page passes the bigint maximum and ''), and one
    last row with kind 1 and 2: unlisted_max and exact_ranks in action_count. last_activity: one
    backward index probe per page row on (player_id, time DESC)."""
    of_type = " AND a.action_type = :action_type::text" if typed else ""
    return statement(f"top_players{'_typed' if typed else ''}", f"""
WITH {_TOP_COUNTS_TYPED if typed else _TOP_COUNTS}, page AS (
    SELECT player_id, action_count FROM counts
    WHERE action_count > 0
      AND (action_count < :after_count::bigint
           OR (action_count = :after_count::bigint AND player_id COLLATE "C" > :after_player::text))
    ORDER BY action_count DESC, player_id COLLATE "C"
    LIMIT :limit::int
)
SELECT * FROM (
SELECT 0 AS kind, p.player_id, p.action_count,
       (SELECT a.time FROM player_actions_ts a
         WHERE a.player_id = p.player_id AND a.time >= :b0::timestamptz AND a.time < :b5::timestamptz{of_type}
         ORDER BY a.time DESC LIMIT 1) AS last_activity
FROM page p
UNION ALL
SELECT 1, NULL, unlisted_max, NULL FROM bound
UNION ALL
SELECT 2, NULL, (SELECT count(*) FROM counts, bound WHERE action_count > unlisted_max), NULL
) answer
ORDER BY kind, action_count DESC, player_id COLLATE "C"
""")


# --- overview -------------------------------------------------------------------------------
# Violations per rule and per severity: whole hours [:h0, :h1) from violation_counts_1h, the
# partial hours at both ends from violations_ts. A rule's severity is its latest violation's.
_VIOLATION_PIECES = """
    SELECT rule, severity, violations AS n, last_detected_at AS at, last_id AS id FROM violation_counts_1h
    WHERE bucket >= :h0::timestamptz AND bucket < :h1::timestamptz
    UNION ALL
    SELECT rule, severity, 1, detected_at, id FROM violations_ts
    WHERE (detected_at >= :since::timestamptz AND detected_at < :h0::timestamptz)
       OR (detected_at >= :h1::timestamptz AND detected_at < :until::timestamptz)"""

VIOLATIONS_BY_RULE = statement("violations_by_rule", f"""
SELECT rule, (array_agg(severity ORDER BY at DESC, id DESC))[1]::int AS severity, sum(n)::bigint AS count
FROM ({_VIOLATION_PIECES}) pieces
GROUP BY rule
ORDER BY count DESC, rule COLLATE "C"
LIMIT :limit::int
""")

VIOLATIONS_BY_SEVERITY = statement("violations_by_severity", f"""
SELECT severity::int AS severity, sum(n)::bigint AS count
FROM ({_VIOLATION_PIECES}) pieces
GROUP BY severity
""")

# Players ever seen: the fold-kept count plus new players of batches still queued for the top fold
# (neither an hour nor expired hours yet); banned ones through the partial index on banned_until.
PLAYER_TOTALS = statement("player_totals", f"""
WITH {_PENDING_ROWS.format(queue="ingest_pending_top")}
SELECT ((SELECT players FROM player_count)
        + (SELECT count(DISTINCT p.player_id) FROM pending p
           WHERE NOT EXISTS (SELECT 1 FROM player_hours h WHERE h.player_id = p.player_id)
             AND NOT EXISTS (SELECT 1 FROM player_summary s WHERE s.player_id = p.player_id AND s.first_seen IS NOT NULL)))::bigint AS total,
       (SELECT count(*) FROM player_summary WHERE banned_until > :as_of::timestamptz)::bigint AS banned
""")

SKETCHES = statement("sketches", "SELECT to_regclass('player_sketch_1min') IS NOT NULL AS hll")


# --- one player ---------------------------------------------------------------------------
# A player's activity is player_summary's (its hours past retention) plus the sum over its kept
# hours (player_hours, through the primary key) plus the rows of batches still queued for the top
# fold (found through the batch index: the queue is short), so a player is complete from its first
# acknowledged action; violations, risk and ban from player_summary too.
PLAYER_SUMMARY = statement("player_summary", f"""
WITH pending AS (
    SELECT min(a.time) AS first_seen, max(a.time) AS last_seen, count(*) AS n
    FROM {_PENDING_JOIN.format(queue="ingest_pending_top", extra=" AND a.player_id = :player_id::text")}
), hours AS (
    SELECT min(first_time) AS first_seen, max(last_time) AS last_seen, sum(actions) AS n
    FROM player_hours WHERE player_id = :player_id::text
)
SELECT :player_id::text AS player_id, least(s.first_seen, h.first_seen, p.first_seen) AS first_seen,
       greatest(s.last_seen, h.last_seen, p.last_seen) AS last_seen,
       (coalesce(s.action_count, 0) + coalesce(h.n, 0) + p.n)::bigint AS action_count,
       s.violation_count, s.risk_score, coalesce(s.banned_until > :as_of::timestamptz, false) AS banned,
       (SELECT max(v.severity)::int FROM violations_ts v WHERE v.player_id = :player_id::text) AS highest_severity
FROM pending p CROSS JOIN hours h LEFT JOIN player_summary s ON s.player_id = :player_id::text
WHERE s.first_seen IS NOT NULL OR h.n IS NOT NULL OR p.n > 0
""")

# One player's per-minute activity, from raw rows through the (player_id, time) index (exact).
PLAYER_ACTIVITY = statement("player_activity", """
SELECT date_trunc('minute', time, 'UTC') AS minute, count(*)::bigint AS actions, sum(value)::float8 AS value_sum
FROM player_actions_ts
WHERE player_id = :player_id::text AND time >= :start::timestamptz AND time < :end::timestamptz
GROUP BY 1
ORDER BY 1
""")

_TYPE = " AND action_type = :action_type::text"

# jsonb as is: a ::text cast would run for every candidate row before the top-N sort.
_VIOLATION_COLUMNS = """id, detected_at, player_id, rule, severity::int AS severity, evidence,
       window_start, window_end, ban_requested"""

RECENT_VIOLATIONS = statement("recent_violations", f"""
SELECT {_VIOLATION_COLUMNS}
FROM violations_ts
WHERE player_id = :player_id::text
ORDER BY detected_at DESC, id DESC
LIMIT :limit::int
""")


# Keyset order of a player's actions: time, then every other column, so that rows with equal
# keys are indistinguishable in the API (the cursor then counts how many of them were sent).
_ACTION_KEY = ("time", 'action_type COLLATE "C"', "value", "coalesce(event_id, '') COLLATE \"C\"",
               "md5(coalesce(metadata::text, ''))")


@cache
def player_actions(by_type: bool, after: bool) -> Statement:
    """A page of one player's raw actions, newest first; ``after``: continue at the cursor key
    (inclusive: the caller skips the rows with the cursor's key it already returned)."""
    cursor = ""
    if after:
        cursor = f"""
  AND time <= :c_time::timestamptz
  AND ({", ".join(_ACTION_KEY)}) <= (:c_time::timestamptz, :c_type::text, :c_value::float8, :c_event::text, :c_md5::text)"""
    return statement(f"player_actions{'_by_type' if by_type else ''}{'_after' if after else ''}", f"""
SELECT time, action_type, value, metadata, coalesce(event_id, '') AS event_id,
       md5(coalesce(metadata::text, '')) AS metadata_md5
FROM player_actions_ts
WHERE player_id = :player_id::text AND time >= :start::timestamptz AND time < :end::timestamptz{_TYPE if by_type else ""}{cursor}
ORDER BY {", ".join(k + " DESC" for k in _ACTION_KEY)}
LIMIT :limit::int
""")


@cache
def violations(by_time: bool, by_player: bool, by_rule: bool, by_severity: bool, after: bool) -> Statement:
    """A page of violations, newest first by (detected_at, id), filters ANDed."""
    where = ["true"]
    if by_time:
        where.append("detected_at >= :start::timestamptz AND detected_at < :end::timestamptz")
    if by_player:
        where.append("player_id = :player_id::text")
    if by_rule:
        where.append("rule = :rule::text")
    if by_severity:
        where.append("severity = ANY(:severities::smallint[])")
    if after:
        where.append("(detected_at, id) < (:c_detected_at::timestamptz, :c_id::bigint)")
    flags = "".join("1" if f else "0" for f in (by_time, by_player, by_rule, by_severity, after))
    return statement(f"violations_{flags}", f"""
SELECT {_VIOLATION_COLUMNS}
FROM violations_ts
WHERE {" AND ".join(where)}
ORDER BY detected_at DESC, id DESC
LIMIT :limit::int
""")


# --- storage ------------------------------------------------------------------------------
# The service's tables: the seed's "*_ts" plus the summary and the rollups.
OWN_TABLES = ("player_actions_ts", "violations_ts", "player_summary", "action_stats_1min", "action_stats_1h",
              "action_type_stats_1min", "action_type_stats_1h", "player_sketch_1min", "player_sketch_1h",
              "players_seen_1min", "players_seen_1h", "player_hours", "top_players_1h", "violation_counts_1h")

TIMESCALEDB_VERSION = statement("timescaledb_version", """
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS version
""")

_OWN = """n.nspname = current_schema() AND (c.relname LIKE '%\\_ts' OR c.relname = ANY(:tables::text[]))"""

# Plain PostgreSQL: a partitioned table's size is the sum over its partition tree (which is
# empty for an unpartitioned table: then the table itself).
TABLE_SIZES_PLAIN = statement("table_sizes_plain", f"""
SELECT n.nspname || '.' || c.relname AS name,
       sum(pg_total_relation_size(tc.oid))::bigint AS total_bytes,
       sum(pg_relation_size(tc.oid))::bigint AS table_bytes,
       sum(pg_indexes_size(tc.oid))::bigint AS index_bytes,
       coalesce(sum(greatest(tc.reltuples, 0)) FILTER (WHERE coalesce(t.isleaf, true)), 0)::bigint AS row_estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL pg_partition_tree(c.oid) t ON true
JOIN pg_class tc ON tc.oid = coalesce(t.relid, c.oid)
WHERE {_OWN} AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY 1
ORDER BY 2 DESC, 1
""")

# TimescaleDB: hypertables sized over their chunks, continuous aggregates by their materialization
# hypertable, everything else as a plain table.
TABLE_SIZES_TIMESCALE = statement("table_sizes_timescale", f"""
WITH own AS (
    SELECT n.nspname || '.' || c.relname AS name,
           coalesce((SELECT format('%I.%I', ca.materialization_hypertable_schema,
                                   ca.materialization_hypertable_name)::regclass
                     FROM timescaledb_information.continuous_aggregates ca
                     WHERE ca.view_schema = n.nspname AND ca.view_name = c.relname), c.oid::regclass) AS storage
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_OWN} AND c.relkind IN ('r', 'p', 'v', 'm')
), kinds AS MATERIALIZED (
    SELECT own.*, EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                          WHERE format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass = own.storage)
                  AS hyper
    FROM own
), hyper AS MATERIALIZED (SELECT * FROM kinds WHERE hyper)
SELECT k.name, d.total_bytes::bigint, d.table_bytes::bigint, d.index_bytes::bigint,
       greatest(approximate_row_count(k.storage), 0)::bigint AS row_estimate
FROM hyper k CROSS JOIN LATERAL hypertable_detailed_size(k.storage) d
UNION ALL
SELECT k.name, pg_total_relation_size(k.storage)::bigint, pg_relation_size(k.storage)::bigint,
       pg_indexes_size(k.storage)::bigint, greatest(c.reltuples, 0)::bigint
FROM kinds k JOIN pg_class c ON c.oid = k.storage
WHERE NOT k.hyper
ORDER BY 2 DESC, 1
""")

HYPERTABLES_PLAIN = statement("hypertables_plain", f"""
SELECT n.nspname || '.' || c.relname AS table, count(i.inhrelid)::bigint AS chunk_count,
       0::bigint AS compressed_chunk_count, 0::bigint AS before_compression_bytes,
       0::bigint AS after_compression_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhparent = c.oid
WHERE {_OWN} AND c.relkind = 'p'
GROUP BY 1
ORDER BY 1
""")

HYPERTABLES_TIMESCALE = statement("hypertables_timescale", """
SELECT h.hypertable_schema || '.' || h.hypertable_name AS table, h.num_chunks::bigint AS chunk_count,
       coalesce(s.number_compressed_chunks, 0)::bigint AS compressed_chunk_count,
       coalesce(s.before_compression_total_bytes, 0)::bigint AS before_compression_bytes,
       coalesce(s.after_compression_total_bytes, 0)::bigint AS after_compression_bytes
FROM timescaledb_information.hypertables h
LEFT JOIN LATERAL hypertable_compression_stats(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) s
       ON true
WHERE h.hypertable_schema = current_schema()
ORDER BY 1
""")

# Partition bounds are read back from their catalog text (FOR VALUES FROM ('...') TO ('...')).
CHUNKS_PLAIN = statement("chunks_plain", f"""
SELECT n.nspname || '.' || c.relname AS table, pn.nspname || '.' || p.relname AS chunk,
       (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'FROM \\(''([^'']*)''\\)'))[1]::timestamptz AS range_start,
       (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz AS range_end,
       false AS compressed,
       pg_total_relation_size(p.oid)::bigint AS before_compression_bytes,
       0::bigint AS after_compression_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_inherits i ON i.inhparent = c.oid
JOIN pg_class p ON p.oid = i.inhrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE {_OWN} AND c.relkind = 'p'
ORDER BY before_compression_bytes DESC, chunk
LIMIT :limit::int
""")

CHUNKS_TIMESCALE = statement("chunks_timescale", """
WITH hyper AS (
    SELECT format('%I.%I', hypertable_schema, hypertable_name)::regclass AS rel
    FROM timescaledb_information.hypertables WHERE hypertable_schema = current_schema()
), stats AS MATERIALIZED (
    SELECT s.* FROM hyper CROSS JOIN LATERAL chunk_compression_stats(hyper.rel) s
)
SELECT k.hypertable_schema || '.' || k.hypertable_name AS table,
       k.chunk_schema || '.' || k.chunk_name AS chunk,
       k.range_start, k.range_end, k.is_compressed AS compressed,
       coalesce(s.before_compression_total_bytes,
                pg_total_relation_size(format('%I.%I', k.chunk_schema, k.chunk_name)::regclass))::bigint
           AS before_compression_bytes,
       coalesce(s.after_compression_total_bytes, 0)::bigint AS after_compression_bytes
FROM timescaledb_information.chunks k
LEFT JOIN stats s ON s.chunk_schema = k.chunk_schema AND s.chunk_name = k.chunk_name
WHERE k.hypertable_schema = current_schema()
ORDER BY before_compression_bytes DESC, chunk
LIMIT :limit::int
""")

# Retention, compression and refresh jobs (TimescaleDB 2.x views; the seed's drop_chunks_policies
# is 1.x). A refresh job's hypertable is the materialization table: report its view instead.
POLICIES_TIMESCALE = statement("policies_timescale", """
SELECT j.job_id::text AS job_id, j.proc_name,
       coalesce(ca.view_schema || '.' || ca.view_name, j.hypertable_schema || '.' || j.hypertable_name) AS target,
       extract(epoch FROM j.schedule_interval)::float8 AS schedule_seconds,
       extract(epoch FROM (CASE j.proc_name
           WHEN 'policy_retention' THEN j.config->>'drop_after'
           WHEN 'policy_compression' THEN j.config->>'compress_after'
           WHEN 'policy_refresh_continuous_aggregate' THEN j.config->>'start_offset' END)::interval)::float8
           AS threshold_seconds,
       extract(epoch FROM (CASE WHEN j.proc_name = 'policy_refresh_continuous_aggregate'
           THEN j.config->>'end_offset' END)::interval)::float8 AS end_offset_seconds,
       j.scheduled AS enabled,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END AS last_run_time,
       s.last_run_status, s.job_status,
       CASE WHEN isfinite(coalesce(s.next_start, j.next_start)) THEN coalesce(s.next_start, j.next_start) END
           AS next_run_time,
       coalesce(s.total_failures, 0)::bigint AS total_failures
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.proc_name IN ('policy_retention', 'policy_compression', 'policy_refresh_continuous_aggregate')
  AND (j.hypertable_schema = current_schema() OR ca.view_schema = current_schema())
ORDER BY j.job_id
""")

CAGGS_TIMESCALE = statement("caggs_timescale", """
SELECT ca.view_schema || '.' || ca.view_name AS view, ca.view_name AS name,
       NOT ca.materialized_only AS real_time,
       (SELECT CASE WHEN isfinite(w) THEN w END
          FROM _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(h.id)) AS w)
           AS materialized_through
FROM timescaledb_information.continuous_aggregates ca
JOIN _timescaledb_catalog.hypertable h
  ON h.schema_name = ca.materialization_hypertable_schema AND h.table_name = ca.materialization_hypertable_name
WHERE ca.view_schema = current_schema()
ORDER BY 1
""")

# Plain PostgreSQL: the folded aggregates (readers add the raw rows of queued batches: real time).
CAGGS_PLAIN = statement("caggs_plain", """
SELECT n.nspname || '.' || c.relname AS view, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname IN ('action_type_stats_1min', 'action_type_stats_1h')
ORDER BY 1
""")

HYPERTABLE_BACKEND = statement("hypertable_backend", """
SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
               WHERE hypertable_schema = current_schema() AND hypertable_name = 'player_actions_ts') AS hyper
""")


def all_statements(*, hll: bool = True) -> list[Statement]:
    """Every statement variant (for tests that run them all, e.g. on TimescaleDB); ``hll``: the
    sketch variants too (they need the hll extension)."""
    fixed = [v for v in globals().values() if isinstance(v, Statement)]
    variants = [f(h) for f in (window_totals, hourly_load) for h in ((False, True) if hll else (False,))]
    variants += [player_actions(t, a) for t in (False, True) for a in (False, True)]
    variants += [violations(*(bool(i >> k & 1) for k in range(5))) for i in range(32)]
    return fixed + variants
