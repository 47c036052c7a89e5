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
    "player_hours": ("SELECT bucket, player_id, actions, first_time, last_time FROM player_hours",
                     f"SELECT {_HOUR}, player_id, count(*), min(time), max(time) FROM player_actions_ts GROUP BY 1, 2"),
    "player_count": ("SELECT players FROM player_count", "SELECT count(DISTINCT player_id) FROM player_actions_ts"),
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


_PLAYER_HOURS = f"""SELECT {_HOUR} AS bucket, ''::text AS action_type, player_id, count(*) AS n
                   FROM player_actions_ts GROUP BY 1, 3"""

# The top lists (one per hour, all action types): every listed count exact; every hour keeps
# min(K, its players); nobody left out has more than the list's lowest count (the bound the
# rankings state).
_TOP_LISTS = f"""
WITH raw AS ({_PLAYER_HOURS}),
lists AS (SELECT bucket, action_type, count(*) AS kept, min(actions) AS kth FROM top_players_1h GROUP BY 1, 2),
population AS (SELECT bucket, action_type, count(*) AS players FROM raw GROUP BY 1, 2)
SELECT 'count differs' AS problem, t.bucket, t.action_type, t.player_id, t.actions AS n
FROM top_players_1h t LEFT JOIN raw r USING (bucket, action_type, player_id) WHERE r.n IS DISTINCT FROM t.actions
UNION ALL
SELECT 'list size', p.bucket, p.action_type, NULL, coalesce(l.kept, 0)
FROM population p LEFT JOIN lists l USING (bucket, action_type) WHERE coalesce(l.kept, 0) <> least(p.players, {TOP_K})
UNION ALL
SELECT 'left out above the lowest listed', r.bucket, r.action_type, r.player_id, r.n
FROM raw r JOIN lists l USING (bucket, action_type)
WHERE r.n > l.kth AND NOT EXISTS (SELECT 1 FROM top_players_1h t WHERE (t.bucket, t.action_type, t.player_id)
                                                                      = (r.bucket, r.action_type, r.player_id))"""


async def mismatches(conn) -> dict[str, list]:
    out: dict[str, list] = {}
    hll = await conn.fetchval("SELECT to_regclass('player_sketch_1min') IS NOT NULL")
    checks = dict(_EXACT, **({} if hll else _SEEN))
    for name, (folded, raw) in checks.items():
        rows = await conn.fetch(f"(({folded}) EXCEPT ALL ({raw})) UNION ALL (({raw}) EXCEPT ALL ({folded}))")
        if rows:
            out[name] = [tuple(dict(r).values()) for r in rows][:10]
    rows = await conn.fetch(_TOP_LISTS)
    if rows:
        out["top_players_1h"] = [tuple(dict(r).values()) for r in rows][:10]
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
                               "ingest_pending_top)")


async def player_totals(conn, player_id: str):
    """A player's folded (actions, first seen, last seen): its kept hours plus its expired ones."""
    return await conn.fetchrow(
        "SELECT (coalesce((SELECT action_count FROM player_summary WHERE player_id = $1), 0)"
        "        + coalesce(sum(actions), 0))::bigint AS action_count,"
        "       least(min(first_time), (SELECT first_seen FROM player_summary WHERE player_id = $1)) AS first_seen,"
        "       greatest(max(last_time), (SELECT last_seen FROM player_summary WHERE player_id = $1)) AS last_seen"
        " FROM player_hours WHERE player_id = $1", player_id)
