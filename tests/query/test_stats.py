"""Overview, top players and hourly load against independent raw SQL over player_actions_ts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from banhammer.query.v1 import query_pb2 as pb

from .helpers import duration, raw_hourly, raw_top, raw_window, when


def test_overview_matches_raw_sql(query, db):
    r = query.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=10)
    as_of = when(r.as_of)
    for stats, length in ((r.last_minute, timedelta(minutes=1)), (r.last_hour, timedelta(hours=1)),
                          (r.last_day, timedelta(days=1))):
        assert stats.window.ToTimedelta() == length
        assert (stats.action_count, stats.unique_players) == raw_window(db, as_of - length, as_of)
    assert r.last_day.action_count > r.last_hour.action_count > 0
    assert r.actions_per_second == pytest.approx(r.last_minute.action_count / 60)

    since = as_of - timedelta(days=1)
    by_rule = db.rows(
        "SELECT rule, (array_agg(severity ORDER BY detected_at DESC, id DESC))[1], count(*) FROM violations_ts"
        ' WHERE detected_at >= %s AND detected_at < %s GROUP BY rule ORDER BY 3 DESC, rule COLLATE "C"',
        (since, as_of))
    assert [(v.rule, v.severity, v.count) for v in r.violations_by_rule] == by_rule
    by_severity = dict(db.rows("SELECT severity, count(*) FROM violations_ts WHERE detected_at >= %s"
                               " AND detected_at < %s GROUP BY severity", (since, as_of)))
    assert [(v.severity, v.count) for v in r.violations_by_severity] == [(s, by_severity.get(s, 0)) for s in (1, 2, 3, 4)]

    # Players ever seen: those with actions kept, and those whose actions all expired.
    ((total,),) = db.rows("SELECT count(*) FROM (SELECT player_id FROM player_actions_ts UNION"
                          " SELECT player_id FROM player_summary WHERE first_seen IS NOT NULL) p")
    ((banned,),) = db.rows("SELECT count(*) FROM player_summary WHERE banned_until > %s", (as_of,))
    assert (r.total_players, r.banned_players) == (total, banned)
    assert 0 < banned < total


@pytest.mark.parametrize("window,action_type", [
    (timedelta(minutes=1), ""),  # raw edges only
    (timedelta(minutes=59, seconds=30), ""),  # minutes, no whole hour
    (timedelta(hours=1), ""),
    (timedelta(minutes=150), "kill"),
    (timedelta(days=1), ""),
    (timedelta(days=7), ""),
    (timedelta(days=7), "trade"),
])
def test_top_players_match_the_seed_query(query, db, window, action_type):
    r = query.GetTopPlayers(pb.GetTopPlayersRequest(window=duration(window), action_type=action_type), timeout=10)
    start, as_of = when(r.window.start_time), when(r.window.end_time)
    assert as_of - start == window
    expected = raw_top(db, start, as_of, action_type)[:10]
    assert expected, "the data set must have activity in every tested window"
    got = [(p.player_id, p.action_count, when(p.last_activity)) for p in r.players]
    assert got == expected
    assert [p.rank for p in r.players] == list(range(1, len(expected) + 1))


def test_top_players_default_window_is_one_hour(query):
    r = query.GetTopPlayers(pb.GetTopPlayersRequest(), timeout=10)
    assert when(r.window.end_time) - when(r.window.start_time) == timedelta(hours=1)
    assert len(r.players) == 10


@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_top_players_pages_have_no_gaps_or_repeats(query, db, page_size):
    request = pb.GetTopPlayersRequest(window=duration(timedelta(days=7)), page_size=page_size)
    pages, token, window = [], "", None
    for _ in range(200):  # a cursor that does not advance fails instead of looping
        request.page_token = token
        r = query.GetTopPlayers(request, timeout=10)
        window = window or r.window
        assert r.window == window, "every page describes the instant pinned by the first"
        pages.extend(r.players)
        token = r.next_page_token
        if not token:
            break
    else:
        raise AssertionError("still paging after 200 pages")
    expected = raw_top(db, when(window.start_time), when(window.end_time))
    assert [(p.player_id, p.action_count, when(p.last_activity)) for p in pages] == expected
    assert [p.rank for p in pages] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize("hours", [1, 3, 24, 200])
def test_hourly_load_matches_the_seed_query(query, db, hours):
    r = query.GetHourlyLoad(pb.GetHourlyLoadRequest(hours=hours), timeout=10)
    as_of = when(r.as_of)
    assert len(r.hours) == hours
    first = when(r.hours[0].hour_start)
    assert first == as_of.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    expected = raw_hourly(db, first, as_of)
    got = {when(h.hour_start): (h.action_count, h.unique_players) for h in r.hours}
    assert [when(h.hour_start) for h in r.hours] == [first + timedelta(hours=i) for i in range(hours)]
    assert {h: v for h, v in got.items() if v != (0, 0)} == expected
    assert sum(n for n, _ in got.values()) > 0


def test_hourly_load_defaults_to_24_hours(query):
    assert len(query.GetHourlyLoad(pb.GetHourlyLoadRequest(), timeout=10).hours) == 24

