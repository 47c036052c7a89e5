"""The fold on a real TimescaleDB (PGlite + TimescaleDB 2.23, no hll extension: the exact
fallback), and the query service's answers on it against plain PostgreSQL with the same appends:
equal where exact (every figure there), within the stated bound where plain PostgreSQL has the
hll sketches.

Two folders at once and a fold killed mid-way need several sessions, which PGlite does not have:
those run on plain PostgreSQL (tests/ingest/test_fold.py), over the same SQL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from services.ingest.store import fold, partitions, run_migrations
from services.ingest.store import migrate as ingest_migrate
from services.query.store import Session, reads
from services.query.windows import split
from tests.harness.aggregates import mismatches
from tests.harness.appends import append

from .pglite import Connection, Server

pytestmark = pytest.mark.timescale

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HOUR, MINUTE, DAY = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
RULES = (("speed", 2), ("aimbot", 4), ("spam", 1))


def _ms(t: datetime) -> datetime:
    """Millisecond precision: PGlite's results travel through JavaScript dates."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _batches() -> list[list[tuple]]:
    rnd = random.Random(17)
    out = []
    for b in range(14):
        if b == 6:  # late events: 5 to 20 hours old
            start, span = NOW - 20 * HOUR, 15 * HOUR
        else:
            start, span = NOW - 3 * HOUR, 3 * HOUR
        out.append([(_ms(start + rnd.random() * span), f"t{int(400 * rnd.random() ** 2)}", rnd.choice(("kill", "trade")),
                     rnd.randrange(0, 20) / 2, None, None) for _ in range(150)])
    return out


VIOLATIONS = [(NOW - timedelta(minutes=7 * i + 3), f"t{i % 9}", RULES[i % 3][0], RULES[i % 3][1]) for i in range(80)]
_VIOLATIONS_SQL = ("INSERT INTO violations_ts (detected_at, player_id, rule, severity) "
                   "SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::smallint[])")


async def _fill(conn, batches: list[list[tuple]]) -> None:
    for rows in batches[:-2]:
        await append(conn, rows)
    await conn.execute(_VIOLATIONS_SQL, *([v[i] for v in VIOLATIONS] for i in range(4)))
    await fold.drain(conn)
    assert await mismatches(conn) == {}, "folded aggregates differ from raw"
    for rows in batches[-2:]:  # queued, not folded: readers must count them anyway
        await append(conn, rows)


async def _plain(pg_server, hll: bool) -> asyncpg.Connection:
    dsn = pg_server.new_database("agree", owner=None if hll else "banhammer")
    await run_migrations(dsn, 7)
    conn = await asyncpg.connect(dsn)
    await partitions.ensure_days(conn, partitions.days_between(NOW - 2 * DAY, NOW + DAY))
    assert await fold.has_hll(conn) is hll
    return conn


@pytest.fixture(scope="module")
async def backends(pglite: Server, pglite_conn: Connection, pg_server):
    batches = _batches()
    await ingest_migrate.migrate(pglite_conn)
    assert not await fold.has_hll(pglite_conn)
    await _fill(pglite_conn, batches)
    exact, sketched = await _plain(pg_server, False), await _plain(pg_server, True)
    for conn in (exact, sketched):
        await _fill(conn, batches)
    yield {"timescale": Session(pglite_conn), "plain": Session(exact), "plain+hll": Session(sketched)}
    await exact.close()
    await sketched.close()


async def _answers(s: Session, hll: bool) -> dict:
    windows = {"minute": split(NOW - MINUTE, NOW), "hour": split(NOW - HOUR + 7 * MINUTE / 3, NOW),
               "day": split(NOW - DAY, NOW), "late": split(NOW - 21 * HOUR, NOW - 4 * HOUR - 13 * MINUTE)}
    out = {}
    for name, w in windows.items():
        out[f"totals {name}"] = await reads.window_totals(s, w, hll)
        out[f"hourly {name}"] = await reads.hourly_load(s, w, hll)
        for t in ("", "kill"):
            ranked = await reads.top_players(s, w, t, None, 50)
            out[f"top {name} {t}"] = (ranked.rows, ranked.unlisted_max, ranked.exact_ranks)
    out["by rule"] = await reads.violations_by_rule(s, NOW - DAY + 17 * MINUTE, NOW, 10)
    out["by severity"] = await reads.violations_by_severity(s, NOW - 5 * HOUR - MINUTE, NOW - 30 * MINUTE)
    out["players"] = await reads.player_totals(s, NOW)
    for p in ("t0", "t3", "t399", "nobody"):
        out[f"summary {p}"] = await reads.player_summary(s, p, NOW)
        out[f"activity {p}"] = await reads.player_activity(s, p, NOW - 2 * HOUR, NOW)
    return out


async def test_timescaledb_and_plain_postgresql_answer_alike(backends):
    timescale = await _answers(backends["timescale"], False)
    plain = await _answers(backends["plain"], False)
    assert timescale == plain
    assert timescale["totals day"][0] == 14 * 150 and timescale["players"][0] > 300
    assert timescale["by rule"] and timescale["summary t0"].total_actions > 0

    sketched = await _answers(backends["plain+hll"], True)
    for key, value in plain.items():
        if key.startswith("totals"):
            assert sketched[key][0] == value[0], key
            assert abs(sketched[key][1] - value[1]) <= 0.02 * value[1], key
        elif key.startswith("hourly"):
            assert {h: a for h, (a, _) in sketched[key].items()} == {h: a for h, (a, _) in value.items()}, key
            for h, (_, players) in value.items():
                assert abs(sketched[key][h][1] - players) <= 0.02 * players, (key, h)
        else:
            assert sketched[key] == value, key


async def test_late_rows_are_in_their_own_hours_on_timescaledb(pglite: Server, backends):
    late = _batches()[6]
    hours = {}
    for t, *_ in late:
        h = t.replace(minute=0, second=0, microsecond=0)
        hours[h] = hours.get(h, 0) + 1
    rows = pglite.rows("SELECT bucket, actions FROM action_type_stats_1h WHERE bucket = ANY($1::timestamptz[])",
                       list(hours))
    folded: dict = {}
    for r in rows:
        folded[r["bucket"]] = folded.get(r["bucket"], 0) + r["actions"]
    # Other batches share the last three hours; the older ones hold only the late batch's rows.
    old = {h: n for h, n in hours.items() if h < NOW - 4 * HOUR}
    assert old and {h: folded[h] for h in old} == old


async def test_rankings_past_the_hourly_lists_state_their_bound_on_timescaledb(pglite: Server, backends):
    """An hour 40 hours ago with more players than a list keeps: lists trimmed on TimescaleDB too,
    every listed count exact, exact_ranks exactly the players above the stated bound."""
    conn, s = backends["timescale"].conn, backends["timescale"]
    hour = NOW.replace(minute=0, second=0) - 40 * HOUR
    rnd = random.Random(8)
    rows = [(_ms(hour + rnd.random() * HOUR), f"k{int(3000 * rnd.random() ** 2)}", "kill", 1.0, None, None)
            for _ in range(6000)]
    for i in range(0, len(rows), 1500):
        await append(conn, rows[i:i + 1500])
    await fold.drain(conn)
    assert await mismatches(conn) == {}
    window = split(hour - 20 * MINUTE, hour + HOUR + 20 * MINUTE)
    ranked = await reads.top_players(s, window, "", None, 100)
    exact: dict[str, int] = {}
    for _, p, *_ in rows:
        exact[p] = exact.get(p, 0) + 1
    assert len(exact) > fold.TOP_K and ranked.unlisted_max > 0
    assert ranked.exact_ranks == sum(1 for n in exact.values() if n > ranked.unlisted_max)
    assert all(exact[p] == n for p, n, _ in ranked.rows)
    expected = sorted(exact.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    assert [(p, n) for p, n, _ in ranked.rows][:ranked.exact_ranks] == expected[:min(100, ranked.exact_ranks)]
