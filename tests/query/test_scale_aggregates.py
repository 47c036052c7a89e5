"""Approximate figures against exact counts over raw, within their stated bounds; rankings beyond
the per-hour top lists; batches not folded yet are counted all the same.

A private database per backend: 40k players over the last two hours (more than the per-hour top
lists keep), loaded as ingest appends and folded by ingest's fold, except the last batches, which
stay queued, as if the materializer lagged.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from banhammer.query.v1 import query_pb2 as pb
from services.ingest.store import fold, partitions, run_migrations
from tests.harness.appends import append

from .conftest import OWNER, READER
from .helpers import duration, raw_hourly, raw_top, raw_window, when

PLAYERS, BATCHES, ROWS = 40_000, 30, 3000


@pytest.fixture(scope="module", params=[True, False], ids=["hll", "exact"])
async def scale_db(request, pg_server):
    hll = request.param
    dsn = pg_server.new_database("scale", owner=OWNER)
    name = dsn.rsplit("/", 1)[1]
    if hll:
        pg_server.execute("CREATE EXTENSION hll", name)
    await run_migrations(dsn, 7)
    now = datetime.now(timezone.utc)
    rnd = random.Random(21)
    conn = await asyncpg.connect(dsn)
    try:
        await partitions.ensure_days(conn, partitions.days_between(now - timedelta(days=2), now + timedelta(days=1)))
        for b in range(BATCHES):
            rows = [(now - timedelta(seconds=7200 * rnd.random()), f"s{int(PLAYERS * rnd.random() ** 2)}",
                     rnd.choice(("kill", "trade")), 1.0) for _ in range(ROWS)]
            await append(conn, rows, copy=True)
            if b == BATCHES - 3:
                await fold.drain(conn)  # the last two batches stay queued
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    from .conftest import Database
    db = Database(dsn, pg_server.grant_read_only(name, READER, OWNER), name, None)
    return hll, db


@pytest.fixture(scope="module")
def scale(scale_db, start_query):
    hll, db = scale_db
    return hll, db, start_query(db.reader_dsn, QUERY_SNAPSHOT_FRESH_MS="0").stub


def _within(estimate: int, exact: int, bound: float) -> bool:
    return abs(estimate - exact) <= bound * exact


def test_overview_counts_are_exact_and_distinct_players_within_the_stated_bound(scale):
    hll, db, stub = scale
    assert db.rows("SELECT count(*) FROM ingest_pending_stats") == [(2,)], "some batches are not folded"
    r = stub.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=30)
    as_of = when(r.as_of)
    for stats, length in ((r.last_minute, timedelta(minutes=1)), (r.last_hour, timedelta(hours=1)),
                          (r.last_day, timedelta(days=1))):
        actions, players = raw_window(db, as_of - length, as_of)
        assert stats.action_count == actions
        accuracy = stats.unique_players_accuracy
        if hll:
            assert (accuracy.exact, accuracy.relative_error, accuracy.confidence) == (False, 0.02, 0.98)
            assert _within(stats.unique_players, players, accuracy.relative_error), (stats.unique_players, players)
        else:
            assert accuracy.exact and stats.unique_players == players
    assert r.last_hour.unique_players > 10_000  # past the sketches' exact (explicit) range
    assert r.total_players == db.rows("SELECT count(DISTINCT player_id) FROM player_actions_ts")[0][0]


def test_hourly_load_actions_exact_and_players_within_the_bound(scale):
    hll, db, stub = scale
    r = stub.GetHourlyLoad(pb.GetHourlyLoadRequest(hours=4), timeout=30)
    expected = raw_hourly(db, when(r.hours[0].hour_start), when(r.as_of))
    assert r.unique_players_accuracy.exact is not hll
    got = {when(h.hour_start): (h.action_count, h.unique_players) for h in r.hours if h.action_count}
    assert set(got) == set(expected) and len(got) >= 2
    for hour, (actions, players) in expected.items():
        assert got[hour][0] == actions
        assert _within(got[hour][1], players, r.unique_players_accuracy.relative_error), (hour, got[hour], players)


@pytest.mark.parametrize("window", [timedelta(hours=1), timedelta(hours=1, minutes=30), timedelta(days=1)])
def test_top_players_beyond_the_hourly_lists_state_what_is_exact(scale, window):
    action_type = ""
    _, db, stub = scale
    r = stub.GetTopPlayers(pb.GetTopPlayersRequest(window=duration(window), action_type=action_type, page_size=1000),
                           timeout=30)
    start, as_of = when(r.window.start_time), when(r.window.end_time)
    exact = raw_top(db, start, as_of, action_type)
    counts = {p: n for p, n, _ in exact}
    assert len(counts) > fold.TOP_K, "the window must have more players than a list keeps"
    a = r.accuracy
    assert not a.exact and a.unlisted_max_count > 0
    # exact_ranks is every player above the bound, none missing: the stated bound is the truth.
    assert a.exact_ranks == sum(1 for n in counts.values() if n > a.unlisted_max_count) > 0
    got = [(p.player_id, p.action_count, when(p.last_activity)) for p in r.players]
    # Every listed count (and last activity) is exact; the leading exact_ranks are the exact ranking.
    assert all(counts[p] == n for p, n, _ in got)
    exact_part = min(a.exact_ranks, len(got))
    assert got[:exact_part] == exact[:exact_part]
    assert [p.rank for p in r.players] == list(range(1, len(r.players) + 1))


def test_top_players_of_one_action_type_are_counted_exactly_from_raw_rows(scale):
    """No per-(player, type) state is folded: a typed ranking counts the window's raw rows, so every
    rank is exact, however many players the window has."""
    _, db, stub = scale
    r = stub.GetTopPlayers(pb.GetTopPlayersRequest(window=duration(timedelta(hours=1, minutes=30)), action_type="kill",
                                                   page_size=1000), timeout=30)
    start, as_of = when(r.window.start_time), when(r.window.end_time)
    exact = raw_top(db, start, as_of, "kill")
    assert len(exact) > fold.TOP_K
    assert r.accuracy.exact and r.accuracy.unlisted_max_count == 0 and r.accuracy.exact_ranks == len(exact)
    assert [(p.player_id, p.action_count, when(p.last_activity)) for p in r.players] == exact[:1000]
