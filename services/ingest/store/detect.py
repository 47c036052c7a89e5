"""SQL of the detector: per-player window aggregates, population percentiles, violations.

Everything is evaluated in the database for the players of one committed group, passed as
arrays; nothing per player is kept in the service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import asyncpg

from . import outbox

_AGGREGATES = {"count": "count(*)", "sum": "sum(a.value)", "max": "max(a.value)"}

# Window (t_end - window, t_end] per player; $3 NULL = every action type.
_WINDOW = """
SELECT t.player_id, t.t_end, count(*) AS n, sum(a.value) AS total, max(a.value) AS peak
FROM unnest($1::text[], $2::timestamptz[]) AS t(player_id, t_end)
JOIN player_actions_ts a
  ON a.player_id = t.player_id AND a.time > t.t_end - $4::interval AND a.time <= t.t_end
 AND ($3::text IS NULL OR a.action_type = $3)
GROUP BY t.player_id, t.t_end
HAVING {aggregate} > $5"""
WINDOW_SQL = {k: _WINDOW.format(aggregate=v) for k, v in _AGGREGATES.items()}

# Per-player action counts over the population window. Windows of an hour or more over every action
# type read the materializer's exact per-(player, hour) counts for the hours the window touches,
# plus the raw rows of batches the "top" fold has not folded yet (one statement: a batch is on
# exactly one side of it). The span is then whole hours (between the window and an hour more), and
# is returned so the rate is per second of what was counted. Shorter windows, and windows of one
# action type (no per-type state is kept per player), count the raw rows of exactly the window.
_PERCENTILE_HOURS = """
WITH since AS (SELECT date_trunc('hour', now() - $2::interval, 'UTC') AS t),
counts AS (
    SELECT player_id, actions AS n FROM player_hours WHERE bucket >= (SELECT t FROM since)
    UNION ALL
    SELECT a.player_id, count(*) FROM ingest_pending_top q JOIN player_actions_ts a ON a.batch_id = q.batch_id
    WHERE a.time >= (SELECT t FROM since)
    GROUP BY a.player_id
), per_player AS (SELECT player_id, sum(n) AS n FROM counts GROUP BY player_id)
SELECT percentile_cont($1::float8) WITHIN GROUP (ORDER BY n) AS value, count(*) AS population,
       extract(epoch FROM now() - (SELECT t FROM since))::float8 AS span
FROM per_player"""
_PERCENTILE_RAW = """
SELECT percentile_cont($1::float8) WITHIN GROUP (ORDER BY n) AS value, count(*) AS population,
       extract(epoch FROM $2::interval)::float8 AS span
FROM (SELECT player_id, count(*) AS n FROM player_actions_ts
      WHERE time >= now() - $2::interval AND ($3::text IS NULL OR action_type = $3)
      GROUP BY player_id) per_player"""
HOURLY_FROM = 3600.0  # seconds: windows this long or longer read the hourly counts


RECORD_VIOLATIONS = """
INSERT INTO violations_ts (detected_at, player_id, rule, severity, evidence, window_start, window_end, ban_requested)
SELECT now(), v.player_id, $1, $2, v.evidence::jsonb, v.window_start, v.window_end, $3
FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
     AS v(player_id, evidence, window_start, window_end)
WHERE NOT EXISTS (
    SELECT 1 FROM violations_ts x
    WHERE x.rule = $1 AND x.player_id = v.player_id AND x.detected_at > now() - $8::interval)
ORDER BY v.player_id
RETURNING id, player_id, detected_at"""

# risk = 1 - prod(1 - weight): every violation moves the score towards 1, never past it.
# A player's summary row exists from its first violation (its activity is in player_hours).
UPDATE_SUMMARY = """
INSERT INTO player_summary AS p (player_id, violation_count, last_violation_at, risk_score)
SELECT t.player_id, 1, $3, $2::float8
FROM unnest($1::text[]) AS t(player_id) ORDER BY t.player_id
ON CONFLICT (player_id) DO UPDATE SET
    violation_count = p.violation_count + 1,
    last_violation_at = $3,
    risk_score = 1 - (1 - p.risk_score) * (1 - $2::float8),
    updated_at = now()"""

SET_BANNED_UNTIL = """
UPDATE player_summary
SET banned_until = greatest(coalesce(banned_until, '-infinity'), coalesce($2::timestamptz, 'infinity')), updated_at = now()
WHERE player_id = $1"""


class WindowHit(NamedTuple):
    player_id: str
    t_end: datetime
    n: int
    total: float
    peak: float


class Candidate(NamedTuple):
    player_id: str
    evidence: dict
    window_start: datetime
    window_end: datetime


class Recorded(NamedTuple):
    violation_id: int
    player_id: str
    detected_at: datetime


async def window_hits(conn: asyncpg.Connection, aggregate: str, players: Sequence[str], t_ends: Sequence[datetime],
                      action_type: str | None, window: float, threshold: float) -> list[WindowHit]:
    rows = await conn.fetch(WINDOW_SQL[aggregate], list(players), list(t_ends), action_type,
                            timedelta(seconds=window), threshold)
    return [WindowHit(*r.values()) for r in rows]


class Percentile(NamedTuple):
    value: float | None  # the percentile of per-player action counts
    population: int  # players counted
    span: float  # seconds the counts cover


async def percentile(conn: asyncpg.Connection, pct: float, window: float, action_type: str | None) -> Percentile:
    """The population's ``pct`` percentile of per-player counts over (about) the last ``window`` seconds."""
    if window >= HOURLY_FROM and action_type is None:
        row = await conn.fetchrow(_PERCENTILE_HOURS, pct / 100.0, timedelta(seconds=window))
    else:
        row = await conn.fetchrow(_PERCENTILE_RAW, pct / 100.0, timedelta(seconds=window), action_type)
    return Percentile(row["value"], row["population"], row["span"])


async def record(conn: asyncpg.Connection, rule: str, severity: int, weight: float,
                 ban: Callable[[Recorded], bytes] | None, cooldown: float,
                 found: Sequence[Candidate]) -> list[Recorded]:
    """Insert violations (skipping players still in the rule's cooldown); update their summaries.

    With ``ban`` (a violation -> serialized BanRequest), each violation's ban goes into the outbox in
    the same transaction: committed violation, ban on its way."""
    async with conn.transaction():
        # Two writers evaluating the same rule must not both pass the cooldown check.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest-detect:' || $1))", rule)
        rows = await conn.fetch(
            RECORD_VIOLATIONS, rule, severity, ban is not None,
            [c.player_id for c in found], [json.dumps(c.evidence, default=str) for c in found],
            [c.window_start for c in found], [c.window_end for c in found], timedelta(seconds=cooldown))
        recorded = [Recorded(*r.values()) for r in rows]
        if recorded:
            await conn.execute(UPDATE_SUMMARY, [r.player_id for r in recorded], weight, recorded[0].detected_at)
            if ban is not None:
                await outbox.insert(conn, [(r.violation_id, r.player_id, rule, ban(r)) for r in recorded])
    return recorded


async def set_banned_until(conn: asyncpg.Connection, player_id: str, until: datetime | None) -> None:
    """Record the session service's ban end (None: permanent) on the player's summary."""
    await conn.execute(SET_BANNED_UNTIL, player_id, until)
