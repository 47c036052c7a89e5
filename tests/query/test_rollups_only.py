"""Windows of an hour or more come from the rollups, not from raw rows.

On a private copy of the data set, the raw rows of 20 interior hours are deleted while the rollups
keep them. A service that scanned raw rows would now see fewer actions; the rollup-based service
must still agree with the raw data as it was (a copy kept in ``truth``).
"""

from __future__ import annotations

from datetime import timedelta

from banhammer.query.v1 import query_pb2 as pb

from .helpers import when


async def test_interior_hours_are_never_read_from_raw_rows(new_db, start_query):
    db = await new_db()
    now = db.dataset.now.replace(minute=0, second=0, microsecond=0)
    cut_from, cut_to = now - timedelta(hours=22), now - timedelta(hours=2)
    db.rows("CREATE TABLE truth AS SELECT * FROM player_actions_ts")
    db.rows("DELETE FROM player_actions_ts WHERE time >= %s AND time < %s RETURNING 1", (cut_from, cut_to))
    ((deleted,),) = db.rows("SELECT count(*) FROM truth WHERE time >= %s AND time < %s", (cut_from, cut_to))
    assert deleted > 100

    stub = start_query(db.reader_dsn, QUERY_SNAPSHOT_FRESH_MS="0").stub
    overview = stub.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=10)
    as_of = when(overview.as_of)
    ((day_actions, day_players),) = db.rows(
        "SELECT count(*), count(DISTINCT player_id) FROM truth WHERE time >= %s AND time < %s",
        (as_of - timedelta(days=1), as_of))
    assert (overview.last_day.action_count, overview.last_day.unique_players) == (day_actions, day_players)

    load = stub.GetHourlyLoad(pb.GetHourlyLoadRequest(hours=24), timeout=10)
    expected = dict(((h, (n, p)) for h, n, p in db.rows(
        "SELECT date_trunc('hour', time), count(*), count(DISTINCT player_id) FROM truth"
        " WHERE time >= %s AND time < %s GROUP BY 1", (when(load.hours[0].hour_start), when(load.as_of)))))
    got = {when(h.hour_start): (h.action_count, h.unique_players) for h in load.hours if h.action_count}
    assert got == expected
    assert sum(n for n, _ in expected.values()) > sum(n for (n,) in db.rows(
        "SELECT count(*) FROM player_actions_ts WHERE time >= %s AND time < %s",
        (when(load.hours[0].hour_start), when(load.as_of)))), "the raw table now disagrees"
