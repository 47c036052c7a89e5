"""The ingest write path and the detector's SQL on a real TimescaleDB (PGlite + TimescaleDB 2.23).

The same functions the service calls (``store.writes.write_group`` with ``rollups=False``, as on
TimescaleDB, and ``store.detect``) run over ``tests.timescale.pglite.Connection``: group commit
into the hypertable, de-duplication by event id, the summary upsert, the real-time continuous
aggregates seeing the new rows at once, windowed rule queries on the hypertable, the population
percentile from the aggregate, and violation recording with its cooldown.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.ingest.actions import Row
from services.ingest.store import detect, writes
from services.ingest.store import migrate as ingest_migrate

from .pglite import Connection, Server

pytestmark = pytest.mark.timescale

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


@pytest.fixture(scope="module")
async def db(pglite: Server, pglite_conn: Connection) -> Connection:
    await ingest_migrate.migrate(pglite_conn, compress_after_days=7)
    return pglite_conn


@pytest.fixture(scope="module")
def now(pglite: Server, db):
    return pglite.value("SELECT date_trunc('minute', now()) - interval '10 minutes'")


def _rows(prefix: str, start, n: int, players: int = 3, event: bool = True) -> list[Row]:
    return [Row(start + i * SECOND, f"{prefix}{i % players}", "kill" if i % 2 else "loot", float(i),
                json.dumps({"i": i}) if i % 3 == 0 else None, f"{prefix}e{i}" if event else None)
            for i in range(n)]


async def test_group_commit_dedupes_and_keeps_the_summary(pglite: Server, db: Connection, now):
    a, b = _rows("w-", now, 12), _rows("w-", now + MINUTE, 6, event=False)
    a_retry_and_new = a[6:] + _rows("wn-", now, 4)
    first = await writes.write_group(db, [a, b], rollups=False, want_touched=True)
    assert first.duplicates == [0, 0]
    again = await writes.write_group(db, [a_retry_and_new], rollups=False, want_touched=False)
    assert again.duplicates == [6]  # the six retried actions, not the four new ones
    assert again.touched == []

    # touched: one entry per (player, action type) of the kept rows, with their extremes
    mine = {(t.player_id, t.action_type): t for t in first.touched}
    expected: dict[tuple, list[Row]] = {}
    for r in a + b:
        expected.setdefault((r.player_id, r.action_type), []).append(r)
    assert set(mine) == set(expected)
    for key, rows in expected.items():
        t = mine[key]
        assert (t.n, t.min_value, t.max_value) == (len(rows), min(r.value for r in rows), max(r.value for r in rows))
        assert (t.first_time, t.last_time) == (min(r.time for r in rows), max(r.time for r in rows))

    stored = pglite.rows("SELECT player_id, count(*)::bigint AS n, count(metadata)::bigint AS meta "
                         "FROM player_actions_ts WHERE player_id LIKE 'w-%' GROUP BY 1 ORDER BY 1")
    per_player: dict[str, list[Row]] = {}
    for r in a + b:
        per_player.setdefault(r.player_id, []).append(r)
    assert stored == [{"player_id": p, "n": len(rs), "meta": sum(r.metadata is not None for r in rs)}
                      for p, rs in sorted(per_player.items())]
    assert pglite.value("SELECT count(*) FROM player_actions_ts WHERE player_id LIKE 'wn-%'") == 4

    summary = {r["player_id"]: r for r in pglite.rows(
        "SELECT player_id, first_seen, last_seen, action_count FROM player_summary WHERE player_id LIKE 'w-%'")}
    for p, rs in per_player.items():
        assert summary[p]["action_count"] == len(rs)
        assert summary[p]["first_seen"] == min(r.time for r in rs)
        assert summary[p]["last_seen"] == max(r.time for r in rs)

    # Real-time aggregation: the continuous aggregate already counts the new rows.
    cagg = pglite.rows("SELECT player_id, sum(actions)::bigint AS n FROM action_stats_1min "
                       "WHERE player_id LIKE 'w-%' GROUP BY 1 ORDER BY 1")
    assert cagg == [{"player_id": p, "n": len(rs)} for p, rs in sorted(per_player.items())]


async def test_detector_queries_and_violation_cooldown(pglite: Server, db: Connection, now):
    burst = _rows("d-", now + 2 * MINUTE, 30, players=2)  # d-0: values 0,2,..; d-1: 1,3,..
    await writes.write_group(db, [burst], rollups=False, want_touched=False)
    ends = [max(r.time for r in burst if r.player_id == p) for p in ("d-0", "d-1")]

    hits = await detect.window_hits(db, "count", ["d-0", "d-1"], ends, None, 60.0, 14)
    assert sorted((h.player_id, h.n) for h in hits) == [("d-0", 15), ("d-1", 15)]
    assert await detect.window_hits(db, "count", ["d-0", "d-1"], ends, None, 60.0, 15) == []
    peak = await detect.window_hits(db, "max", ["d-0", "d-1"], ends, "kill", 60.0, 28)
    assert [(h.player_id, h.peak) for h in peak] == [("d-1", 29.0)]

    value, population = await detect.percentile(db, 50.0, 3600.0, None)
    assert population >= 2 and value is not None

    found = [detect.Candidate("d-0", {"count": 15}, ends[0] - MINUTE, ends[0])]
    first = await detect.record(db, "ts-rate", 3, 0.4, True, 300.0, found)
    assert [r.player_id for r in first] == ["d-0"]
    assert await detect.record(db, "ts-rate", 3, 0.4, True, 300.0, found) == []  # cooldown
    row = pglite.rows("SELECT violation_count, risk_score FROM player_summary WHERE player_id = 'd-0'")[0]
    assert row == {"violation_count": 1, "risk_score": pytest.approx(0.4)}
    await detect.set_banned_until(db, "d-0", None)
    assert pglite.value("SELECT banned_until FROM player_summary WHERE player_id = 'd-0'") == "infinity"


async def test_history_written_below_the_watermark_appears_once_refreshed(pglite: Server, db: Connection, now):
    """What the SQLite import does at the end: rows older than the aggregates' watermark are not in
    the real-time view until the imported range is refreshed (writes.REFRESH_AGGREGATES)."""
    old = now - timedelta(days=3)
    lo, hi = old - timedelta(hours=1), old + timedelta(hours=2)
    # The watermark is the end of the newest materialized bucket: materialize a day of newer data.
    await writes.write_group(db, [_rows("recent-", old + timedelta(days=1), 5)], rollups=False, want_touched=False)
    for view in ("action_stats_1min", "action_stats_1h"):  # the watermark moves past `old`
        await db.execute(f"CALL refresh_continuous_aggregate('{view}', $1::timestamptz, $2::timestamptz)",
                         old - timedelta(days=1), now - timedelta(hours=2))
    await writes.write_group(db, [_rows("hist-", old, 40)], rollups=False, want_touched=False)

    def counted(view: str) -> int:
        return pglite.value(f"SELECT coalesce(sum(actions), 0)::bigint FROM {view} WHERE player_id LIKE 'hist-%'")

    assert counted("action_stats_1min") == counted("action_stats_1h") == 0  # below the watermark: unseen
    for statement in writes.REFRESH_AGGREGATES:
        await db.execute(statement, lo, hi)
    assert counted("action_stats_1min") == counted("action_stats_1h") == 40
