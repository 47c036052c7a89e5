"""The query service's real SQL (``services/query/store/sql.py``, run through the real
``services/query/store/reads.py`` functions) on a real TimescaleDB (PGlite + TimescaleDB 2.23),
against the ingest service's real schema (``migrate.py`` -> ``0001_base.sql`` +
``0002_timescale.sql``).

The window statements stitch raw edges, the per-minute and per-hour aggregates folded by ingest's
real fold (``services/ingest/store/fold.py``; no hll extension here, so distinct players come from
the exact fallback) and the raw rows of batches still queued: the data here is appended as the
append-only writer does, mostly folded, the last batches not. Every answer is compared with a
raw-table computation over exactly the same window, in the same database, and with the expectation
computed in Python.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from services.ingest.store import fold
from services.ingest.store import migrate as ingest_migrate
from tests.harness.appends import append
from services.query.store import Session, reads, sql
from services.query.windows import floor_to, split

from .data import ACTIONS, Action, insert_actions
from .pglite import Connection, Server, step

pytestmark = pytest.mark.timescale

DAY, HOUR, MINUTE, SECOND = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1)


def _player(i: int) -> str:
    # Uneven counts, with ties, so the ranking and its tie-break (byte order) both matter.
    return f"q{i % 7}" if i % 3 else f"Q{i % 4}"


@pytest.fixture(scope="module")
async def world(pglite: Server, pglite_conn: Connection) -> dict:
    await ingest_migrate.migrate(pglite_conn)
    now = pglite.value("SELECT now()")
    first = now - 6 * HOUR + 7 * SECOND
    rows = [Action(time=first + i * 13 * SECOND + timedelta(milliseconds=(i * 389) % 1000), player_id=_player(i),
                   action_type=ACTIONS[(i // 2) % 3], value=((i * 7) % 11) + 0.25, event_id=f"e{i}")
            for i in range(int((6 * HOUR - 3 * MINUTE) / (13 * SECOND)))]
    as_tuples = [(r.time, r.player_id, r.action_type, r.value, None, r.event_id) for r in rows]
    folded_to = len(rows) - 40  # the last 40 actions stay queued (a materializer lagging behind)
    for i in range(0, folded_to, 200):
        await append(pglite_conn, as_tuples[i:min(i + 200, folded_to)])
    await fold.drain(pglite_conn)
    await append(pglite_conn, as_tuples[folded_to:folded_to + 25])
    await append(pglite_conn, as_tuples[folded_to + 25:])
    assert pglite.value("SELECT count(*) FROM ingest_pending_stats") == 2
    return {"now": now, "rows": rows, "queued_from": rows[folded_to].time, "session": Session(pglite_conn)}


def _windows(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    return {
        "hours, ragged ends, into the real-time tail": (now - 5 * HOUR - 31 * MINUTE + 17.3 * SECOND,
                                                         now - MINUTE + 4.1 * SECOND),
        "whole hours only, materialized": (floor_to(now, HOUR) - 5 * HOUR, floor_to(now, HOUR) - 3 * HOUR),
        "minutes only": (now - 3 * HOUR + 5 * SECOND, now - 2 * HOUR - 20 * MINUTE - 9 * SECOND),
        "inside one minute": (floor_to(now, MINUTE) - 30 * MINUTE + 2 * SECOND,
                              floor_to(now, MINUTE) - 30 * MINUTE + 50 * SECOND),
        "before any data": (now - 3 * DAY, now - 2 * DAY),
    }


def _in(rows: list[Action], start: datetime, end: datetime) -> list[Action]:
    return [r for r in rows if start <= r.time < end]


async def test_window_totals_top_players_and_hourly_load_match_raw(pglite: Server, world):
    s, rows = world["session"], world["rows"]
    for label, (start, end) in _windows(world["now"]).items():
        w = split(start, end)
        inside = _in(rows, start, end)
        raw = pglite.check([
            step("SELECT count(*)::bigint AS actions, count(DISTINCT player_id)::bigint AS players "
                 "FROM player_actions_ts WHERE time >= $1::timestamptz AND time < $2::timestamptz", start, end),
            step('SELECT player_id, count(*)::bigint AS n, max(time) AS last FROM player_actions_ts '
                 'WHERE time >= $1::timestamptz AND time < $2::timestamptz '
                 'GROUP BY 1 ORDER BY 2 DESC, player_id COLLATE "C"', start, end),
            step('SELECT player_id, count(*)::bigint AS n, max(time) AS last FROM player_actions_ts '
                 "WHERE time >= $1::timestamptz AND time < $2::timestamptz AND action_type = 'kill' "
                 'GROUP BY 1 ORDER BY 2 DESC, player_id COLLATE "C"', start, end),
            step("SELECT date_trunc('hour', time, 'UTC') AS hour, count(*)::bigint AS actions, "
                 "count(DISTINCT player_id)::bigint AS players FROM player_actions_ts "
                 "WHERE time >= $1::timestamptz AND time < $2::timestamptz GROUP BY 1 ORDER BY 1", start, end),
        ])
        # Totals: the stitched statement == raw SQL == Python.
        totals = await reads.window_totals(s, w, False)
        assert totals == (raw[0][0]["actions"], raw[0][0]["players"]), label
        assert totals == (len(inside), len({r.player_id for r in inside})), label

        # Ranking, paged by the keyset cursor (3 per page) until exhausted.
        for by_type, expected in (("", raw[1]), ("kill", raw[2])):
            got, after = [], None
            while True:
                ranked = await reads.top_players(s, w, by_type, after, 3)
                assert (ranked.unlisted_max, ranked.exact_ranks) == (0, len(expected)), (label, by_type)
                page = ranked.rows
                got += page
                if len(page) < 3:
                    break
                after = (page[-1][1], page[-1][0])
            assert got == [(r["player_id"], r["n"], r["last"]) for r in expected], (label, by_type)
        counts = Counter(r.player_id for r in inside)
        assert sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode())) == [(p, n) for p, n, _ in
                                                                                    (await reads.top_players(s, w, "", None, 100)).rows]

        # Per UTC hour: actions and distinct players.
        load = await reads.hourly_load(s, w, False)
        assert load == {r["hour"]: (r["actions"], r["players"]) for r in raw[3]}, label
        assert sum(a for a, _ in load.values()) == len(inside), label
    assert any(r.time >= world["queued_from"] for r in rows)  # queued batches were really read


async def test_player_activity_per_minute_matches_raw(pglite: Server, world):
    s = world["session"]
    for label, (start, end) in _windows(world["now"]).items():
        for player in ("q1", "Q0"):
            got = await reads.player_activity(s, player, start, end)
            raw = pglite.rows("SELECT date_trunc('minute', time, 'UTC') AS minute, count(*)::bigint AS n, "
                              "sum(value)::float8 AS v FROM player_actions_ts WHERE player_id = $1 "
                              "AND time >= $2::timestamptz AND time < $3::timestamptz GROUP BY 1 ORDER BY 1",
                              player, start, end)
            assert [(m.minute_start, m.actions, m.value_sum) for m in got] == \
                   [(r["minute"], r["n"], r["v"]) for r in raw], (label, player)
            expected: dict[datetime, list] = defaultdict(lambda: [0, 0.0])
            for r in _in(world["rows"], start, end):
                if r.player_id == player:
                    e = expected[floor_to(r.time, MINUTE)]
                    e[0] += 1
                    e[1] += r.value
            assert {m.minute_start: [m.actions, m.value_sum] for m in got} == dict(expected), (label, player)


async def test_overview_statements(pglite: Server, world):
    now, s = world["now"], world["session"]
    rules = ("speed", "aimbot", "spam")
    violations = [{"detected_at": (now - i * 7 * MINUTE).isoformat(), "player_id": f"q{i % 5}", "rule": rules[i % 3],
                   "severity": 1 + (i * 5) % 4, "evidence": {"i": i}} for i in range(60)]
    summaries = [("s1", now + HOUR), ("s2", now - HOUR), ("s3", "infinity"), ("s4", None), ("s5", now + DAY)]
    pglite.check([
        step("INSERT INTO violations_ts (detected_at, player_id, rule, severity, evidence) "
             "SELECT detected_at, player_id, rule, severity, evidence FROM jsonb_to_recordset($1::jsonb) "
             "AS r(detected_at timestamptz, player_id text, rule text, severity smallint, evidence jsonb)",
             json.dumps(violations)),
        step("INSERT INTO player_summary (player_id, banned_until) "
             "SELECT p, b FROM jsonb_to_recordset($1::jsonb) AS r(p text, b timestamptz)",
             json.dumps([{"p": p, "b": b if isinstance(b, (str, type(None))) else b.isoformat()} for p, b in summaries])),
    ])
    since, until = now - 3 * HOUR, now
    inside = [v for v in violations if since <= datetime.fromisoformat(v["detected_at"]) < until]
    by_rule = await reads.violations_by_rule(s, since, until, 10)
    latest = {}
    for v in sorted(inside, key=lambda v: v["detected_at"]):
        latest[v["rule"]] = v["severity"]
    counts = Counter(v["rule"] for v in inside)
    assert [(r.rule, r.severity, r.count) for r in by_rule] == sorted(
        ((rule, latest[rule], n) for rule, n in counts.items()), key=lambda t: (-t[2], t[0].encode()))
    assert await reads.violations_by_severity(s, since, until) == dict(Counter(v["severity"] for v in inside))
    banned = sum(1 for _, b in summaries if b == "infinity" or (b is not None and b > now))
    # Players ever seen: those of folded and of queued batches (a summary alone, as detection and
    # bans write it, is no activity).
    seen = len({r.player_id for r in world["rows"]})
    assert await reads.player_totals(s, now) == (seen, banned) and banned == 3


async def test_storage_statements_report_compression_policies_and_aggregates(pglite: Server, world):
    now, s = world["now"], world["session"]
    old = [Action(floor_to(now, DAY) - 10 * DAY + i * MINUTE, f"old{i % 3}", "kill", 1.0, f"o{i}") for i in range(120)]
    materialized_to = floor_to(now - 2 * HOUR, MINUTE)
    r = pglite.check([
        insert_actions(old),
        step("CALL refresh_continuous_aggregate('action_stats_1min', NULL, $1::timestamptz)", materialized_to),
        step("SELECT compress_chunk(c)::text AS chunk FROM show_chunks('player_actions_ts', "
             "older_than => now() - INTERVAL '8 days') c"),
        step("SELECT * FROM hypertable_compression_stats('player_actions_ts')"),
        step("SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(h.id)) AS w "
             "FROM timescaledb_information.continuous_aggregates ca JOIN _timescaledb_catalog.hypertable h "
             "ON h.table_name = ca.materialization_hypertable_name WHERE ca.view_name = 'action_stats_1min'"),
    ])
    (compressed,), (ts_stats,) = r[2], r[3]
    version = await reads.timescaledb_version(s)
    assert version.startswith("2.23")
    assert await reads.uses_hypertables(s) is True
    assert (await s.fetchrow(sql.SCHEMA_READY))["ready"] is True
    stats = await reads.storage(s, timescale=True, version=version, as_of=now, chunk_limit=50)

    present = {t for t in sql.OWN_TABLES if pglite.value("SELECT to_regclass($1) IS NOT NULL", t)}
    assert {t.name for t in stats.tables} == {f"public.{t}" for t in present}
    assert "player_sketch_1min" not in present and "players_seen_1min" in present  # no hll here
    assert all(t.total_bytes > 0 for t in stats.tables)
    hyper = {h.table: h for h in stats.hypertables}
    actions_ht = hyper["public.player_actions_ts"]
    assert set(hyper) == {"public.player_actions_ts", "public.violations_ts"}
    assert actions_ht.compressed_chunk_count == ts_stats["number_compressed_chunks"] == 1
    assert actions_ht.before_compression_bytes == ts_stats["before_compression_total_bytes"] > 0
    assert actions_ht.after_compression_bytes == ts_stats["after_compression_total_bytes"] > 0
    assert actions_ht.chunk_count == pglite.value("SELECT count(*) FROM show_chunks('player_actions_ts')")
    chunks = {c.chunk: c for c in stats.chunks}
    assert chunks[compressed["chunk"]].compressed and chunks[compressed["chunk"]].after_compression_bytes > 0
    assert sum(c.compressed for c in stats.chunks) == 1
    assert pglite.value("SELECT count(*) FROM player_actions_ts WHERE player_id LIKE 'old%'") == 120

    policies = {(p.kind, p.target): p for p in stats.policies}
    assert policies[("retention", "public.player_actions_ts")].threshold == timedelta(days=90)
    assert policies[("compression", "public.player_actions_ts")].threshold == timedelta(days=7)
    refresh = policies[("refresh", "public.action_stats_1min")]
    assert (refresh.threshold, refresh.end_offset, refresh.schedule_interval) == (timedelta(days=2), MINUTE, MINUTE)
    assert policies[("refresh", "public.action_stats_1h")].end_offset == HOUR
    assert all(p.enabled for p in stats.policies)
    aggs = {a.view: a for a in stats.aggregates}
    assert set(aggs) == {"public.action_stats_1min", "public.action_stats_1h"}
    assert aggs["public.action_stats_1min"].real_time and aggs["public.action_stats_1h"].real_time
    assert aggs["public.action_stats_1min"].materialized_through == r[4][0]["w"] == materialized_to


def _generic_values(now: datetime) -> dict:
    w = split(now - 3 * HOUR + 3 * SECOND, now - 4 * SECOND)
    return {**dict(zip(("b0", "b1", "b2", "b3", "b4", "b5"), w.params())),
            "action_type": "kill", "after_count": 2**63 - 1, "after_player": "", "limit": 5, "player_id": "q1",
            "since": now - DAY, "until": now, "as_of": now, "start": now - DAY, "end": now, "timeout_ms": 5000,
            "c_time": now, "c_type": "kill", "c_value": 1.0, "c_event": "e1", "c_md5": "x", "rule": "speed",
            "severities": [1, 2], "c_detected_at": now, "c_id": 10**12, "tables": list(sql.OWN_TABLES),
            "h0": floor_to(now, HOUR) - DAY, "h1": floor_to(now, HOUR)}


def test_every_statement_runs_on_timescaledb(pglite: Server, world):
    """All of sql.all_statements() (every variant, plain-PostgreSQL ones included) parse, plan and
    execute on TimescaleDB with the parameter types the service sends."""
    values = _generic_values(world["now"])
    statements = sql.all_statements(hll=False)  # no hll extension in PGlite
    results = pglite.run([step(st.sql, *st.args(values)) for st in statements])
    failures = {st.name: r["error"] for st, r in zip(statements, results) if "error" in r}
    assert failures == {}
    assert len(statements) >= 50
