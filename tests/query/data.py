"""Deterministic test data for the query service, loaded the way ingest stores it.

Raw rows are appended as ingest's append-only write path does (batches with a batch_id and a row in
every fold queue: tests/harness/appends.py) and folded into the aggregates by ingest's real fold
(services/ingest/store/fold.py), which also keeps player_hours; player_summary's violation columns
are then set as detection would.
The data spreads over eight days with a dense last few hours, skewed players, exact duplicate
rows and same-microsecond ties (pagination), and a few rows just ahead of "now".
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg

from services.ingest.store import fold, partitions
from services.ingest.store.migrate import migrate
from tests.harness.appends import append

ACTION_TYPES = ("reward_collection", "kill", "trade", "login")
RULES = (("reward_rate", 3), ("impossible_value", 4), ("trade_burst", 2), ("login_spam", 1))


@dataclass(frozen=True)
class Dataset:
    now: datetime
    players: list[str]
    actions: int
    tie_player: str


def _players(n: int) -> list[str]:
    return [f"player_{i:03d}" for i in range(n)] + ["플레이어_ü"]  # non-ASCII sorts by bytes


def generate(now: datetime, seed: int = 7) -> tuple[list[tuple], list[tuple], list[tuple], Dataset]:
    rnd = random.Random(seed)
    players = _players(40)
    weights = [1 / (i + 1) ** 0.9 for i in range(len(players))]
    rows: list[tuple] = []

    def action(t: datetime, player: str) -> tuple:
        kind = rnd.choice(ACTION_TYPES)
        value = float(rnd.choice([1, 5, 10, 100])) if rnd.random() < 0.7 else round(rnd.uniform(-5, 500), 3)
        metadata = json.dumps({"server": rnd.choice(["eu-1", "us-2"]), "n": rnd.randint(0, 9)}) if rnd.random() < 0.3 else None
        event_id = f"e{len(rows)}" if rnd.random() < 0.4 else None
        return (t, player, kind, value, metadata, event_id)

    # Dense recent activity (last 3 hours and 2 minutes ahead), sparse over eight days.
    for _ in range(9000):
        t = now - timedelta(seconds=rnd.uniform(-120, 3 * 3600))
        rows.append(action(t, rnd.choices(players, weights)[0]))
    for _ in range(3000):
        t = now - timedelta(seconds=rnd.uniform(0, 8 * 86400))
        rows.append(action(t, rnd.choices(players, weights)[0]))
    # Pagination hazards for one player: exact duplicates and distinct rows at one microsecond.
    tie_player = players[5]
    tie_time = (now - timedelta(minutes=30)).replace(microsecond=123456)
    dup = (tie_time, tie_player, "kill", 10.0, None, None)
    rows += [dup] * 5
    rows += [(tie_time, tie_player, kind, v, None, None) for kind in ("login", "trade") for v in (1.0, 2.0)]
    rows += [(tie_time, tie_player, "kill", 10.0, json.dumps({"k": i}), None) for i in range(3)]
    rows += [(tie_time, tie_player, "kill", 10.0, None, f"tie{i}") for i in range(3)]

    violations = []
    for i in range(400):
        rule, severity = rnd.choice(RULES)
        detected = now - timedelta(seconds=rnd.uniform(0, 3 * 86400))
        if i % 50 == 0:  # same detection time for several rows: the id breaks the tie
            detected = (now - timedelta(hours=2)).replace(microsecond=0)
        player = rnd.choices(players, weights)[0]
        evidence = json.dumps({"count": rnd.randint(1, 900), "limit": 500, "action_type": rnd.choice(ACTION_TYPES)})
        violations.append((detected, player, rule, severity, evidence, detected - timedelta(minutes=1), detected,
                           rnd.random() < 0.2))

    summary = []
    for p in players:
        mine = [r[0] for r in rows if r[1] == p]
        if not mine:
            continue
        banned = rnd.choice([None, None, now - timedelta(days=1), now + timedelta(days=1), "infinity"])
        summary.append((p, min(mine), max(mine), len(mine), sum(1 for v in violations if v[1] == p),
                        rnd.random(), banned))
    # Active once, long ago: all its hours are past retention, moved into its summary by expiry.
    summary.append(("never_active", now - timedelta(days=120), now - timedelta(days=100), 7, 0, 0.0, None))
    return rows, violations, summary, Dataset(now, players, len(rows), tie_player)


BATCH_ROWS = 1000


async def load(dsn: str, now: datetime | None = None, *, superuser_dsn: str | None = None,
               hll: bool = False) -> Dataset:
    """Migrate (ingest's real migrations) and load the data set into the database at ``dsn``;
    ``hll``: create the hll extension first (as ``superuser_dsn``), so sketches are used."""
    now = now or datetime.now(timezone.utc)
    rows, violations, summary, dataset = generate(now)
    if hll:
        admin = await asyncpg.connect(superuser_dsn)
        try:
            await admin.execute("CREATE EXTENSION IF NOT EXISTS hll")
        finally:
            await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await partitions.ensure_days(conn, partitions.days_between(now - timedelta(days=9), now + timedelta(days=2)))
        for i in range(0, len(rows), BATCH_ROWS):
            await append(conn, rows[i:i + BATCH_ROWS], copy=True)
        await conn.executemany(
            "INSERT INTO violations_ts (detected_at, player_id, rule, severity, evidence, window_start, window_end,"
            " ban_requested) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)", violations)
        await fold.drain(conn)
        await conn.executemany(
            # What detection and bans write; activity comes from the folded hours.
            "INSERT INTO player_summary (player_id, violation_count, risk_score, banned_until, last_violation_at,"
            " updated_at) VALUES ($1, $2, $3, $4::text::timestamptz, NULL, now())"
            " ON CONFLICT (player_id) DO UPDATE SET violation_count = EXCLUDED.violation_count,"
            " risk_score = EXCLUDED.risk_score, banned_until = EXCLUDED.banned_until",
            [(s[0], s[4], s[5], None if s[6] is None else str(s[6])) for s in summary[:-1]])
        # The player whose hours expired: counted when its first hour was folded, its activity since
        # moved into player_summary (as fold.expire does).
        await conn.execute("INSERT INTO player_summary (player_id, first_seen, last_seen, action_count)"
                           " VALUES ($1, $2, $3, $4)", *summary[-1][:4])
        await conn.execute("UPDATE player_count SET players = players + 1")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return dataset
