"""The ingest write path and the detector's SQL on a real TimescaleDB (PGlite + TimescaleDB 2.23).

The same functions the service calls (``store.writes.write_group`` without COPY, which PGlite
cannot take, and ``store.detect``) run over ``tests.timescale.pglite.Connection``: group commit
into the hypertable, de-duplication by event id and by batch key, the real-time continuous
aggregates seeing the new rows at once, windowed rule queries on the hypertable, the population
percentile from the aggregate, and violation recording with its cooldown.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.ingest.actions import BatchKey, Row
from services.runtime.errors import FailedPrecondition
from services.ingest.store import detect, writes
from services.ingest.store import migrate as ingest_migrate

from .pglite import Connection, Server

pytestmark = pytest.mark.timescale

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


@pytest.fixture(scope="module")
async def db(pglite: Server, pglite_conn: Connection) -> Connection:
    await ingest_migrate.migrate(pglite_conn, compress_after_days=7)
    # A fold queue of this test's own: both write paths must feed it once per transaction.
    await pglite_conn.execute("CREATE TABLE IF NOT EXISTS ingest_pending_test (batch_id bigint PRIMARY KEY, "
                              "rows int NOT NULL, min_time timestamptz NOT NULL, max_time timestamptz NOT NULL)")
    return pglite_conn


@pytest.fixture(scope="module")
def now(pglite: Server, db):
    return pglite.value("SELECT date_trunc('minute', now()) - interval '10 minutes'")


def _rows(prefix: str, start, n: int, players: int = 3, event: bool = True) -> list[Row]:
    return [Row(start + i * SECOND, f"{prefix}{i % players}", "kill" if i % 2 else "loot", float(i),
                json.dumps({"i": i}) if i % 3 == 0 else None, f"{prefix}e{i}" if event else None)
            for i in range(n)]


STATEMENTS = writes.Statements.of(["ingest_pending_test"])


async def write(db, *batches, key=None):
    return await writes.write_group(db, [writes.Batch(b, key) for b in batches], statements=STATEMENTS,
                                    copy_min_rows=0)


async def test_group_commit_dedupes_and_stamps_one_batch_id(pglite: Server, db: Connection, now):
    a, b = _rows("w-", now, 12), _rows("w-", now + MINUTE, 6, event=False)
    a_retry_and_new = a[6:] + _rows("wn-", now, 4)
    first = await write(db, a, b)
    assert first.outcomes == [writes.Outcome(0), writes.Outcome(0)]
    again = await write(db, a_retry_and_new)
    assert again.outcomes == [writes.Outcome(6)]  # the six retried actions, not the four new ones
    assert len(again.kept) == 4
    assert pglite.rows("SELECT DISTINCT batch_id FROM player_actions_ts WHERE player_id LIKE 'w-%'") == [
        {"batch_id": first.batch_id}]
    assert again.batch_id > first.batch_id
    queued = {r["batch_id"]: r for r in pglite.rows("SELECT * FROM ingest_pending_test")}
    assert queued[first.batch_id]["rows"] == len(a) + len(b) and queued[again.batch_id]["rows"] == 4
    assert queued[first.batch_id]["min_time"] == min(r.time for r in a + b)

    # touched: one entry per (player, action type) of the kept rows, with their extremes
    mine = {(t.player_id, t.action_type): t for t in writes.touched(first.kept)}
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

    # A keyed batch resent is a duplicate as a whole; a lower epoch is fenced.
    key = BatchKey("ts-producer", 2, 5, "ab" * 16)
    assert (await write(db, _rows("k-", now, 3, event=False), key=key)).outcomes == [writes.Outcome(0)]
    assert (await write(db, _rows("k-", now, 3, event=False), key=key)).outcomes == [writes.Outcome(3, True)]
    [fenced] = (await write(db, _rows("k-", now, 3, event=False), key=key._replace(epoch=1, sequence=6))).outcomes
    assert isinstance(fenced, FailedPrecondition)
    assert pglite.value("SELECT count(*) FROM player_actions_ts WHERE player_id LIKE 'k-%'") == 3

    # Real-time aggregation: the continuous aggregate already counts the new rows.
    cagg = pglite.rows("SELECT player_id, sum(actions)::bigint AS n FROM action_stats_1min "
                       "WHERE player_id LIKE 'w-%' GROUP BY 1 ORDER BY 1")
    assert cagg == [{"player_id": p, "n": len(rs)} for p, rs in sorted(per_player.items())]


async def test_detector_queries_and_violation_cooldown(pglite: Server, db: Connection, now):
    burst = _rows("d-", now + 2 * MINUTE, 30, players=2)  # d-0: values 0,2,..; d-1: 1,3,..
    await write(db, burst)
    ends = [max(r.time for r in burst if r.player_id == p) for p in ("d-0", "d-1")]

    hits = await detect.window_hits(db, "count", ["d-0", "d-1"], ends, None, 60.0, 14)
    assert sorted((h.player_id, h.n) for h in hits) == [("d-0", 15), ("d-1", 15)]
    assert await detect.window_hits(db, "count", ["d-0", "d-1"], ends, None, 60.0, 15) == []
    peak = await detect.window_hits(db, "max", ["d-0", "d-1"], ends, "kill", 60.0, 28)
    assert [(h.player_id, h.peak) for h in peak] == [("d-1", 29.0)]

    value, population = await detect.percentile(db, 50.0, 3600.0, None)
    assert population >= 2 and value is not None

    found = [detect.Candidate("d-0", {"count": 15}, ends[0] - MINUTE, ends[0])]
    first = await detect.record(db, "ts-rate", 3, 0.4, lambda v: f"ban {v.violation_id}".encode(), 300.0, found)
    assert [r.player_id for r in first] == ["d-0"]
    assert await detect.record(db, "ts-rate", 3, 0.4, lambda v: b"", 300.0, found) == []  # cooldown
    # The ban waits in the outbox, written with the violation.
    assert pglite.rows("SELECT violation_id, player_id FROM ban_outbox") == [
        {"violation_id": first[0].violation_id, "player_id": "d-0"}]
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
    await write(db, _rows("recent-", old + timedelta(days=1), 5))
    for view in ("action_stats_1min", "action_stats_1h"):  # the watermark moves past `old`
        await db.execute(f"CALL refresh_continuous_aggregate('{view}', $1::timestamptz, $2::timestamptz)",
                         old - timedelta(days=1), now - timedelta(hours=2))
    await write(db, _rows("hist-", old, 40))

    def counted(view: str) -> int:
        return pglite.value(f"SELECT coalesce(sum(actions), 0)::bigint FROM {view} WHERE player_id LIKE 'hist-%'")

    assert counted("action_stats_1min") == counted("action_stats_1h") == 0  # below the watermark: unseen
    for statement in writes.REFRESH_AGGREGATES:
        await db.execute(statement, lo, hi)
    assert counted("action_stats_1min") == counted("action_stats_1h") == 40
