"""Every folded aggregate against a direct computation over the raw rows, in the same database.

``mismatches(conn)`` returns, per aggregate, the rows that differ (both directions of EXCEPT), so
an empty dict means every aggregate equals raw. HLL sketches are compared by their estimate,
within ``HLL_BOUND`` of the exact count per bucket. Works over asyncpg and the PGlite connection.
"""

from __future__ import annotations

from services.ingest.store.fold import TOP_K

HLL_BOUND = 0.02

_MINUTE, _HOUR = "date_trunc('minute', time, 'UTC')", "date_trunc('hour', time, 'UTC')"

_EXACT = {
    "action_type_stats_1min": ("SELECT bucket, action_type, actions, value_sum, value_min, value_max FROM action_type_stats_1min",
                               f"SELECT {_MINUTE}, action_type, count(*), sum(value), min(value), max(value) "
                               "FROM player_actions_ts GROUP BY 1, 2"),
    "action_type_stats_1h": ("SELECT bucket, action_type, actions, value_sum, value_min, value_max FROM action_type_stats_1h",
                             f"SELECT {_HOUR}, action_type, count(*), sum(value), min(value), max(value) "
                             "FROM player_actions_ts GROUP BY 1, 2"),
    "player_hour_counts": ("SELECT bucket, player_id, action_type, actions FROM player_hour_counts",
                           f"SELECT {_HOUR}, player_id, action_type, count(*) FROM player_actions_ts GROUP BY 1, 2, 3 "
                           f"UNION ALL SELECT {_HOUR}, player_id, '', count(*) FROM player_actions_ts GROUP BY 1, 2"),
    # The exact top K of every (hour, action type) by (count desc, player_id).
    "top_players_1h": ("SELECT bucket, action_type, player_id, actions FROM top_players_1h",
                       f"""SELECT bucket, action_type, player_id, actions FROM (
                             SELECT *, row_number() OVER (PARTITION BY bucket, action_type
                                                          ORDER BY actions DESC, player_id COLLATE "C") AS rank
                             FROM (SELECT {_HOUR} AS bucket, action_type, player_id, count(*) AS actions
                                   FROM player_actions_ts GROUP BY 1, 2, 3
                                   UNION ALL
                                   SELECT {_HOUR}, '', player_id, count(*) FROM player_actions_ts GROUP BY 1, 3) c) r
                           WHERE rank <= {TOP_K}"""),
    "player_summary": ("SELECT player_id, first_seen, last_seen, action_count FROM player_summary",
                       "SELECT player_id, min(time), max(time), count(*) FROM player_actions_ts GROUP BY 1"),
    "player_count": ("SELECT players FROM player_count", "SELECT count(*) FROM player_summary"),
}
_SEEN = {
    "players_seen_1min": ("SELECT bucket, player_id FROM players_seen_1min",
                          f"SELECT DISTINCT {_MINUTE}, player_id FROM player_actions_ts"),
    "players_seen_1h": ("SELECT bucket, player_id FROM players_seen_1h",
                        f"SELECT DISTINCT {_HOUR}, player_id FROM player_actions_ts"),
}
_SKETCHES = {
    "player_sketch_1min": _MINUTE,
    "player_sketch_1h": _HOUR,
}


async def mismatches(conn) -> dict[str, list]:
    out: dict[str, list] = {}
    hll = await conn.fetchval("SELECT to_regclass('player_sketch_1min') IS NOT NULL")
    checks = dict(_EXACT, **({} if hll else _SEEN))
    for name, (folded, raw) in checks.items():
        rows = await conn.fetch(f"(({folded}) EXCEPT ALL ({raw})) UNION ALL (({raw}) EXCEPT ALL ({folded}))")
        if rows:
            out[name] = [tuple(dict(r).values()) for r in rows][:10]
    if hll:
        for table, unit in _SKETCHES.items():
            rows = await conn.fetch(f"""
                SELECT coalesce(s.bucket, r.bucket) AS bucket, hll_cardinality(s.players) AS estimate, r.exact
                FROM {table} s FULL JOIN (SELECT {unit} AS bucket, count(DISTINCT player_id) AS exact
                                          FROM player_actions_ts GROUP BY 1) r ON r.bucket = s.bucket
                WHERE s.bucket IS NULL OR r.bucket IS NULL
                   OR abs(hll_cardinality(s.players) - r.exact) > $1::float8 * r.exact""", HLL_BOUND)
            if rows:
                out[table] = [tuple(dict(r).values()) for r in rows][:10]
    return out


async def queued(conn) -> int:
    """Batches still waiting in any fold queue."""
    return await conn.fetchval("SELECT (SELECT count(*) FROM ingest_pending_stats) + (SELECT count(*) FROM "
                               "ingest_pending_top) + (SELECT count(*) FROM ingest_pending_summary)")
