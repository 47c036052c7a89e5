"""SQL of a rule's dry run: the rule replayed over the stored actions of a recent range.

Windowed rules are measured like the detector does (a window ending at each action of a player),
with a window function over the raw actions of the range: exact, and bounded by the range (at
most 24 h, so at most a day's partitions). Nothing is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import asyncpg

_MEASURES = {"count": "count(*)", "sum": "sum(value)", "max": "max(value)"}

# $1 start, $2 action type (NULL: all), $3 window, $4 limit, $5 rows returned.
_WINDOWED = """
WITH w AS (
    SELECT player_id, time,
           {measure} OVER (PARTITION BY player_id ORDER BY time
                           RANGE BETWEEN $3::interval PRECEDING AND CURRENT ROW) AS measure
    FROM player_actions_ts
    WHERE time >= $1 AND ($2::text IS NULL OR action_type = $2)
), per_player AS (
    SELECT player_id, max(measure)::float8 AS peak, count(*) AS actions,
           min(time) FILTER (WHERE measure > $4) AS first_time
    FROM w GROUP BY player_id
)
SELECT player_id, peak, actions, first_time,
       count(first_time) OVER () AS flagged, count(*) OVER () AS scanned
FROM per_player
ORDER BY first_time IS NULL, peak DESC, player_id
LIMIT $5"""
WINDOWED = {k: _WINDOWED.format(measure=v) for k, v in _MEASURES.items()}

# $1 start, $2 action type, $3 min (NULL: none), $4 max (NULL: none), $5 rows returned.
IMPOSSIBLE = """
WITH per_player AS (
    SELECT player_id,
           count(*) FILTER (WHERE value < $3 OR value > $4) AS actions,
           min(value) FILTER (WHERE value < $3) AS low,
           max(value) FILTER (WHERE value > $4) AS high,
           min(time) FILTER (WHERE value < $3 OR value > $4) AS first_time
    FROM player_actions_ts
    WHERE time >= $1 AND ($2::text IS NULL OR action_type = $2)
    GROUP BY player_id
)
SELECT player_id, low, high, actions, first_time,
       count(first_time) OVER () AS flagged, count(*) OVER () AS scanned
FROM per_player
ORDER BY first_time IS NULL, actions DESC, player_id
LIMIT $5"""


class Hit(NamedTuple):
    player_id: str
    peak: float
    actions: int
    first_time: datetime


class Result(NamedTuple):
    hits: list[Hit]
    flagged: int
    scanned: int


async def windowed(conn: asyncpg.Connection, measure: str, start: datetime, action_type: str | None,
                   window: float, limit: float, max_players: int) -> Result:
    rows = await conn.fetch(WINDOWED[measure], start, action_type, timedelta(seconds=window), limit, max_players)
    hits = [Hit(r["player_id"], r["peak"], r["actions"], r["first_time"]) for r in rows if r["first_time"]]
    return Result(hits, rows[0]["flagged"] if rows else 0, rows[0]["scanned"] if rows else 0)


async def impossible(conn: asyncpg.Connection, start: datetime, action_type: str | None,
                     min_value: float | None, max_value: float | None, max_players: int) -> Result:
    rows = await conn.fetch(IMPOSSIBLE, start, action_type, min_value, max_value, max_players)
    hits = [Hit(r["player_id"], r["high"] if r["high"] is not None else r["low"], r["actions"], r["first_time"])
            for r in rows if r["first_time"]]
    return Result(hits, rows[0]["flagged"] if rows else 0, rows[0]["scanned"] if rows else 0)
