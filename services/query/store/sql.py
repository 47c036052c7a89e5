"""Every SQL statement of the query service, in one place.

Statements are written with named parameters (``:b0``) and compiled to ``$n``; ``Statement.params``
lists the names in ``$n`` order and ``Statement.args(values)`` builds the argument tuple. Every
parameter carries an explicit cast, so the same text runs through asyncpg and through other
drivers (the PGlite+TimescaleDB test path in ``tests/timescale/`` passes ISO strings).

Window statements take the six boundaries of ``services.query.windows.Split`` (``b0``..``b5``):
raw rows only at the ragged edges (each under a minute), ``action_stats_1min`` for whole minutes,
``action_stats_1h`` for whole hours. They read the same tables on TimescaleDB (real-time
continuous aggregates) and on plain PostgreSQL (rollup tables kept exact by ingest), so the
answers agree. Bucket arithmetic is UTC (``date_trunc(..., 'UTC')``), whatever the session's
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
SELECT to_regclass('player_actions_ts') IS NOT NULL AND to_regclass('action_stats_1min') IS NOT NULL
   AND to_regclass('action_stats_1h') IS NOT NULL AND to_regclass('violations_ts') IS NOT NULL
   AND to_regclass('player_summary') IS NOT NULL AS ready
""")

SET_TIMEOUT = statement("set_timeout", "SELECT set_config('statement_timeout', :timeout_ms::text, true)")


# --- windows over the rollups ---------------------------------------------------------------
def _pieces(columns_raw: str, columns_agg: str, where: str = "") -> str:
    """The five pieces of a split window as one UNION ALL (``where``: extra AND conditions)."""
    return f"""
    SELECT {columns_raw} FROM player_actions_ts
     WHERE time >= :b0::timestamptz AND time < :b1::timestamptz{where}
    UNION ALL
    SELECT {columns_agg} FROM action_stats_1min
     WHERE bucket >= :b1::timestamptz AND bucket < :b2::timestamptz{where}
    UNION ALL
    SELECT {columns_agg} FROM action_stats_1h
     WHERE bucket >= :b2::timestamptz AND bucket < :b3::timestamptz{where}
    UNION ALL
    SELECT {columns_agg} FROM action_stats_1min
     WHERE bucket >= :b3::timestamptz AND bucket < :b4::timestamptz{where}
    UNION ALL
    SELECT {columns_raw} FROM player_actions_ts
     WHERE time >= :b4::timestamptz AND time < :b5::timestamptz{where}"""


_TYPE = " AND action_type = :action_type::text"

# Actions and distinct players in one window. Grouping by player first lets PostgreSQL hash
# instead of sorting for count(DISTINCT).
WINDOW_TOTALS = statement("window_totals", f"""
SELECT coalesce(sum(n), 0)::bigint AS actions, count(*)::bigint AS players
FROM (SELECT player_id, sum(actions) AS n
      FROM ({_pieces("player_id, 1::bigint AS actions", "player_id, actions")}) pieces
      GROUP BY player_id) per_player
""")


@cache
def top_players(by_type: bool) -> Statement:
    """One page of the ranking by action count (ties: player_id in byte order), after the keyset
    cursor (:after_count, :after_player); the first page passes the bigint maximum and ''.

    last_activity comes from the raw table, but only for the page's players, each one backward
    index probe on (player_id, time DESC): rollups do not keep the exact time of the last action.
    """
    where = _TYPE if by_type else ""
    return statement(f"top_players{'_by_type' if by_type else ''}", f"""
WITH counts AS (
    SELECT player_id, sum(actions)::bigint AS action_count
    FROM ({_pieces("player_id, 1::bigint AS actions", "player_id, actions", where)}) pieces
    GROUP BY player_id
), page AS (
    SELECT player_id, action_count FROM counts
    WHERE action_count < :after_count::bigint
       OR (action_count = :after_count::bigint AND player_id COLLATE "C" > :after_player::text)
    ORDER BY action_count DESC, player_id COLLATE "C"
    LIMIT :limit::int
)
SELECT p.player_id, p.action_count,
       (SELECT a.time FROM player_actions_ts a
         WHERE a.player_id = p.player_id AND a.time >= :b0::timestamptz AND a.time < :b5::timestamptz
               {" AND a.action_type = :action_type::text" if by_type else ""}
         ORDER BY a.time DESC LIMIT 1) AS last_activity
FROM page p
ORDER BY p.action_count DESC, p.player_id COLLATE "C"
""")


# Per UTC hour: actions and distinct players (the seed's load analysis, from the rollups).
HOURLY_LOAD = statement("hourly_load", f"""
SELECT hour, sum(n)::bigint AS actions, count(*)::bigint AS players
FROM (SELECT date_trunc('hour', t, 'UTC') AS hour, player_id, sum(actions) AS n
      FROM ({_pieces("time AS t, player_id, 1::bigint AS actions", "bucket, player_id, actions")}) pieces
      GROUP BY 1, 2) per_player
GROUP BY hour
ORDER BY hour
""")

# One player's per-minute activity; pieces from a Split(hours=False) (whole minutes only).
PLAYER_ACTIVITY = statement("player_activity", f"""
SELECT minute, sum(actions)::bigint AS actions, sum(value_sum)::float8 AS value_sum
FROM ({_pieces("date_trunc('minute', time, 'UTC') AS minute, 1::bigint AS actions, value AS value_sum",
               "bucket, actions, value_sum", " AND player_id = :player_id::text")}) pieces
GROUP BY minute
ORDER BY minute
""")


# --- overview -------------------------------------------------------------------------------
# Per rule: count, and the severity of its latest violation (a rule's configured severity).
VIOLATIONS_BY_RULE = statement("violations_by_rule", """
SELECT rule, (array_agg(severity ORDER BY detected_at DESC, id DESC))[1]::int AS severity,
       count(*)::bigint AS count
FROM violations_ts
WHERE detected_at >= :since::timestamptz AND detected_at < :until::timestamptz
GROUP BY rule
ORDER BY count DESC, rule COLLATE "C"
LIMIT :limit::int
""")

VIOLATIONS_BY_SEVERITY = statement("violations_by_severity", """
SELECT severity::int AS severity, count(*)::bigint AS count
FROM violations_ts
WHERE detected_at >= :since::timestamptz AND detected_at < :until::timestamptz
GROUP BY severity
""")

PLAYER_TOTALS = statement("player_totals", """
SELECT count(*)::bigint AS total,
       count(*) FILTER (WHERE banned_until > :as_of::timestamptz)::bigint AS banned
FROM player_summary
""")


# --- one player ---------------------------------------------------------------------------
PLAYER_SUMMARY = statement("player_summary", """
SELECT s.player_id, s.first_seen, s.last_seen, s.action_count, s.violation_count, s.risk_score,
       coalesce(s.banned_until > :as_of::timestamptz, false) AS banned,
       (SELECT max(v.severity)::int FROM violations_ts v WHERE v.player_id = s.player_id) AS highest_severity
FROM player_summary s
WHERE s.player_id = :player_id::text
""")

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
OWN_TABLES = ("player_actions_ts", "violations_ts", "player_summary", "action_stats_1min", "action_stats_1h")

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

# Plain PostgreSQL: the rollups are tables maintained in the write transaction (always current).
CAGGS_PLAIN = statement("caggs_plain", """
SELECT n.nspname || '.' || c.relname AS view, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname IN ('action_stats_1min', 'action_stats_1h')
ORDER BY 1
""")

HYPERTABLE_BACKEND = statement("hypertable_backend", """
SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
               WHERE hypertable_schema = current_schema() AND hypertable_name = 'player_actions_ts') AS hyper
""")


def all_statements() -> list[Statement]:
    """Every statement variant (for tests that run them all, e.g. on TimescaleDB)."""
    fixed = [v for v in globals().values() if isinstance(v, Statement)]
    variants = [top_players(b) for b in (False, True)]
    variants += [player_actions(t, a) for t in (False, True) for a in (False, True)]
    variants += [violations(*(bool(i >> k & 1) for k in range(5))) for i in range(32)]
    return fixed + variants
