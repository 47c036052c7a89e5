"""The ingest service's real migrations on a real TimescaleDB (PGlite + TimescaleDB 2.23).

Runs ``services/ingest/store/migrate.py::migrate`` itself (ledger, capability check, one
transaction per version, ``tune_timescale``) over ``tests.timescale.pglite.Connection``, so the
files it picks, ``migrations/0001_base.sql`` and ``migrations/0002_timescale.sql``, execute
exactly as in production. Then checks the catalog, runs the registered policies with
``CALL run_job`` and compares the continuous aggregates with raw ``GROUP BY``s and with Python.

One database per module; tests use disjoint players and time ranges, so their order does not matter
except where noted (idempotency re-runs last on purpose: it checks nothing was disturbed).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ingest.store import migrate as ingest_migrate

from .data import actions, expected_buckets, floor, insert_actions
from .pglite import Connection, Server, SQLError, step

pytestmark = pytest.mark.timescale

COMPRESS_AFTER_DAYS = 5  # not the file's default (7): proves tune_timescale re-applied the policy
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


@pytest.fixture(scope="module")
async def migrated(pglite_conn: Connection) -> list[int]:
    return await ingest_migrate.migrate(pglite_conn, compress_after_days=COMPRESS_AFTER_DAYS)


@pytest.fixture(scope="module")
def now(pglite: Server, migrated):
    return pglite.value("SELECT now()")


def _jobs(db: Server) -> dict[tuple[str, str], dict]:
    rows = db.rows("SELECT job_id, proc_name, hypertable_name, config, schedule_interval::text AS every "
                   "FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")
    return {(r["proc_name"], r["hypertable_name"]): r for r in rows}


async def test_migrations_apply_in_order_and_record_the_ledger(pglite: Server, pglite_conn, migrated):
    files = ingest_migrate.MIGRATIONS.discover()
    assert migrated == [m.version for m in files] and migrated[:4] == [1, 2, 3, 4]
    assert pglite.rows("SELECT version, name FROM schema_migrations ORDER BY version") == [
        {"version": m.version, "name": m.pick("timescale")[0]} for m in files]
    assert [r["name"] for r in pglite.rows("SELECT name FROM schema_migrations ORDER BY version")][:4] == [
        "base", "timescale", "timescale", "append_only"]
    assert await ingest_migrate.schema_version(pglite_conn) == ingest_migrate.LATEST == files[-1].version
    assert await ingest_migrate.has_timescale(pglite_conn)
    assert pglite.value("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").startswith("2.")
    tables = {r["t"] for r in pglite.rows(
        "SELECT c.relname AS t FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','v','m')")}
    assert {"player_actions_ts", "violations_ts", "player_summary", "schema_migrations", "action_event_ids",
            "action_stats_1min", "action_stats_1h"} <= tables
    assert pglite.value("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'player_summary'::regclass "
                        "AND i.indisprimary") == "player_id"


def test_hypertables_and_chunk_intervals(pglite: Server, migrated):
    hyper = {r["hypertable_name"]: r for r in pglite.rows(
        "SELECT hypertable_name, compression_enabled, primary_dimension, primary_dimension_type "
        "FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'")}
    assert set(hyper) == {"player_actions_ts", "violations_ts"}
    assert hyper["player_actions_ts"]["primary_dimension"] == "time"
    assert hyper["player_actions_ts"]["primary_dimension_type"] == "timestamp with time zone"
    assert hyper["player_actions_ts"]["compression_enabled"] is True
    assert hyper["violations_ts"]["primary_dimension"] == "detected_at"
    dims = {r["hypertable_name"]: r for r in pglite.rows(
        "SELECT hypertable_name, column_name, dimension_type, time_interval::text AS every "
        "FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'")}
    assert dims["player_actions_ts"] == {"hypertable_name": "player_actions_ts", "column_name": "time",
                                         "dimension_type": "Time", "every": "1 day"}
    assert dims["violations_ts"]["every"] == "7 days"


def test_compression_settings_segment_by_player_order_by_time_desc(pglite: Server, migrated):
    rows = pglite.rows("SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
                       "FROM timescaledb_information.compression_settings "
                       "WHERE hypertable_schema = 'public' AND hypertable_name = 'player_actions_ts' "
                       "ORDER BY attname")
    assert rows == [
        {"attname": "player_id", "segmentby_column_index": 1, "orderby_column_index": None, "orderby_asc": None},
        {"attname": "time", "segmentby_column_index": None, "orderby_column_index": 1, "orderby_asc": False},
    ]


def test_policies_registered(pglite: Server, migrated):
    jobs = _jobs(pglite)
    compression = jobs[("policy_compression", "player_actions_ts")]
    assert compression["config"]["compress_after"] == f"{COMPRESS_AFTER_DAYS} days"  # tune_timescale's age
    assert [k for k in jobs if k[0] == "policy_compression"] == [("policy_compression", "player_actions_ts")]
    for table in ("player_actions_ts", "action_stats_1min", "action_stats_1h"):
        assert jobs[("policy_retention", table)]["config"]["drop_after"] == "90 days", table
    refresh_1min = jobs[("policy_refresh_continuous_aggregate", "action_stats_1min")]
    refresh_1h = jobs[("policy_refresh_continuous_aggregate", "action_stats_1h")]
    assert (refresh_1min["config"]["start_offset"], refresh_1min["config"]["end_offset"]) == ("2 days", "00:01:00")
    assert refresh_1min["every"] == "00:01:00"
    assert (refresh_1h["config"]["start_offset"], refresh_1h["config"]["end_offset"]) == ("3 days", "01:00:00")
    assert refresh_1h["every"] == "00:15:00"
    # The same policies as PolicyStatus rows: the policy views the query service reads agree.
    interval_s = pglite.value("SELECT extract(epoch FROM drop_after)::float8 FROM "
                              "(SELECT (config->>'drop_after')::interval AS drop_after FROM timescaledb_information.jobs "
                              "WHERE proc_name = 'policy_retention' AND hypertable_name = 'player_actions_ts') j")
    assert interval_s == 90 * 86400


def test_continuous_aggregates_real_time_and_hierarchical(pglite: Server, migrated):
    caggs = {r["view_name"]: r for r in pglite.rows(
        "SELECT view_name, hypertable_name, materialized_only, materialization_hypertable_name "
        "FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'")}
    assert set(caggs) == {"action_stats_1min", "action_stats_1h"}
    assert caggs["action_stats_1min"]["hypertable_name"] == "player_actions_ts"
    assert not caggs["action_stats_1min"]["materialized_only"]
    assert not caggs["action_stats_1h"]["materialized_only"]
    # action_stats_1h is built on action_stats_1min (its source is the 1-minute materialization).
    assert caggs["action_stats_1h"]["hypertable_name"] == caggs["action_stats_1min"]["materialization_hypertable_name"]
    cols = [r["attname"] for r in pglite.rows(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'action_stats_1min'::regclass AND attnum > 0 ORDER BY attnum")]
    assert cols == ["bucket", "player_id", "action_type", "actions", "value_sum", "value_max"]


def _materialization(db: Server, view: str) -> str:
    r = db.rows("SELECT materialization_hypertable_schema AS s, materialization_hypertable_name AS n "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = $1", view)[0]
    return f'{r["s"]}.{r["n"]}'


_CAGG = ("SELECT bucket, player_id, action_type, actions, value_sum, value_max FROM {view} "
         "WHERE player_id LIKE $1 AND bucket >= $2::timestamptz AND bucket < $3::timestamptz "
         "ORDER BY 1, 2, 3")
_RAW = ("SELECT time_bucket(INTERVAL '{width}', time) AS bucket, player_id, action_type, count(*)::bigint AS actions, "
        "sum(value) AS value_sum, max(value) AS value_max FROM player_actions_ts "
        "WHERE player_id LIKE $1 AND time >= $2::timestamptz AND time < $3::timestamptz "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def _as_dict(rows: list[dict]) -> dict[tuple, tuple]:
    return {(r["bucket"], r["player_id"], r["action_type"]): (r["actions"], r["value_sum"], r["value_max"])
            for r in rows}


def test_refresh_materializes_exactly_the_raw_group_by(pglite: Server, now):
    start = floor(now, HOUR) - 30 * HOUR  # inside both refresh windows, older than their end offsets
    rows = actions("agg-", start, 600, timedelta(seconds=37))  # ~6.2 hours
    lo, hi = start - HOUR, start + 8 * HOUR
    mat_1min, mat_1h = _materialization(pglite, "action_stats_1min"), _materialization(pglite, "action_stats_1h")
    r = pglite.check([
        insert_actions(rows),
        step("CALL refresh_continuous_aggregate('action_stats_1min', $1::timestamptz, $2::timestamptz)", lo, hi),
        step("CALL refresh_continuous_aggregate('action_stats_1h', $1::timestamptz, $2::timestamptz)", lo, hi),
        step(_CAGG.format(view="action_stats_1min"), "agg-%", lo, hi),
        step(_RAW.format(width="1 minute"), "agg-%", lo, hi),
        step(_CAGG.format(view="action_stats_1h"), "agg-%", lo, hi),
        step(_RAW.format(width="1 hour"), "agg-%", lo, hi),
        # The refreshed buckets are stored, not computed on the fly.
        step(f"SELECT count(*) AS n FROM {mat_1min} WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz",
             lo, hi),
        step(f"SELECT count(*) AS n FROM {mat_1h} WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz",
             lo, hi),
    ])
    cagg_1min, raw_1min, cagg_1h, raw_1h = (_as_dict(x) for x in r[3:7])
    assert cagg_1min == raw_1min == expected_buckets(rows, MINUTE)
    assert cagg_1h == raw_1h == expected_buckets(rows, HOUR)
    assert len(cagg_1min) > 300 and len(cagg_1h) >= 6 * 5 * 3
    assert sum(v[0] for v in cagg_1h.values()) == len(rows)
    assert r[7][0]["n"] == len(cagg_1min)
    assert r[8][0]["n"] == len(cagg_1h)


def test_real_time_aggregation_returns_unmaterialized_rows(pglite: Server, now):
    start = floor(now, MINUTE) - 20 * MINUTE  # newer than every refresh: only the real-time part has it
    rows = actions("rt-", start, 90, timedelta(seconds=11), players=3)
    mat_1min, mat_1h = _materialization(pglite, "action_stats_1min"), _materialization(pglite, "action_stats_1h")
    lo, hi = start - HOUR, start + HOUR
    r = pglite.check([
        insert_actions(rows),
        step(_CAGG.format(view="action_stats_1min"), "rt-%", lo, hi),
        step(_RAW.format(width="1 minute"), "rt-%", lo, hi),
        step(_CAGG.format(view="action_stats_1h"), "rt-%", lo - HOUR, hi),
        step(f"SELECT count(*) AS n FROM {mat_1min} WHERE player_id LIKE 'rt-%'"),
        step(f"SELECT count(*) AS n FROM {mat_1h} WHERE player_id LIKE 'rt-%'"),
        step("SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(h.id)) AS w "
             "FROM _timescaledb_catalog.hypertable h WHERE format('%I.%I', h.schema_name, h.table_name) = $1", mat_1min),
    ])
    assert _as_dict(r[1]) == _as_dict(r[2]) == expected_buckets(rows, MINUTE)
    assert _as_dict(r[3]) == expected_buckets(rows, HOUR)  # 1h on top of 1min: real time through both
    assert r[4][0]["n"] == 0 and r[5][0]["n"] == 0  # nothing materialized for them
    assert r[6][0]["w"] <= start  # the watermark is behind the new rows


def test_compression_policy_compresses_old_chunks_and_data_stays_queryable(pglite: Server, now):
    start = floor(now, DAY) - 10 * DAY + HOUR  # one day-chunk, older than the 5-day policy age
    rows = actions("cmp-", start, 800, timedelta(seconds=53), players=4)
    per_player = ("SELECT player_id, count(*)::bigint AS n, sum(value) AS s, max(value) AS m, min(time) AS first, "
                  "max(time) AS last, md5(string_agg(event_id || action_type || value::text, ',' ORDER BY time, event_id)) AS h "
                  "FROM player_actions_ts WHERE player_id LIKE 'cmp-%' GROUP BY 1 ORDER BY 1")
    chunk_of = ("SELECT chunk_schema || '.' || chunk_name AS chunk, is_compressed FROM timescaledb_information.chunks "
                "WHERE hypertable_name = 'player_actions_ts' AND range_start <= $1::timestamptz "
                "AND range_end > $1::timestamptz")
    before = pglite.check([insert_actions(rows), step(per_player), step(chunk_of, start)])
    snapshot, (chunk,) = before[1], before[2]
    assert not chunk["is_compressed"]
    assert [r["n"] for r in snapshot] == [200, 200, 200, 200]

    job = _jobs(pglite)[("policy_compression", "player_actions_ts")]["job_id"]
    after = pglite.check([
        step(f"CALL run_job({int(job)})"),  # the registered policy itself, not compress_chunk by hand
        step(chunk_of, start),
        step("SELECT chunk_schema || '.' || chunk_name AS chunk, compression_status, before_compression_total_bytes AS b, "
             "after_compression_total_bytes AS a FROM chunk_compression_stats('player_actions_ts') "
             "WHERE compression_status = 'Compressed'"),
        step("SELECT number_compressed_chunks AS n, before_compression_total_bytes AS b, "
             "after_compression_total_bytes AS a FROM hypertable_compression_stats('player_actions_ts')"),
        step(per_player),
        step("SELECT count(*)::bigint AS n FROM player_actions_ts WHERE player_id = 'cmp-2' AND action_type = 'kill'"),
        step("SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'player_actions_ts' "
             "AND is_compressed AND range_end > now() - INTERVAL '5 days'"),
    ])
    assert after[1][0] == {"chunk": chunk["chunk"], "is_compressed": True}
    stats = {r["chunk"]: r for r in after[2]}
    assert chunk["chunk"] in stats
    assert stats[chunk["chunk"]]["b"] > 0 and stats[chunk["chunk"]]["a"] > 0
    (totals,) = after[3]
    assert totals["n"] >= 1 and totals["b"] > 0 and totals["a"] > 0
    assert after[4] == snapshot  # same rows, same values, same order, read back from compressed storage
    assert after[5][0]["n"] == sum(1 for r in rows if r.player_id == "cmp-2" and r.action_type == "kill")
    assert after[6] == []  # nothing younger than the policy age was compressed


def test_retention_policy_drops_chunks_older_than_90_days(pglite: Server, now):
    old = actions("ret-", floor(now, DAY) - 100 * DAY + HOUR, 50, timedelta(minutes=3))
    kept = actions("ret-", floor(now, DAY) - 60 * DAY + HOUR, 50, timedelta(minutes=3))
    jobs = _jobs(pglite)
    count = step("SELECT count(*)::bigint AS n, min(time) AS first FROM player_actions_ts WHERE player_id LIKE 'ret-%'")
    r = pglite.check([
        insert_actions(old + kept),
        count,
        step(f"CALL run_job({int(jobs[('policy_retention', 'player_actions_ts')]['job_id'])})"),
        step(f"CALL run_job({int(jobs[('policy_retention', 'action_stats_1min')]['job_id'])})"),
        step(f"CALL run_job({int(jobs[('policy_retention', 'action_stats_1h')]['job_id'])})"),
        count,
        step("SELECT count(*)::bigint AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'player_actions_ts' "
             "AND range_end <= now() - INTERVAL '90 days'"),
    ])
    assert r[1][0]["n"] == 100
    assert r[5][0] == {"n": 50, "first": kept[0].time}
    assert r[6][0]["n"] == 0


async def test_rerunning_migrations_is_idempotent(pglite: Server, pglite_conn, now):
    """Last in the module on purpose: everything above must survive it unchanged."""
    state = [
        step("SELECT version, name FROM schema_migrations ORDER BY version"),
        step("SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs ORDER BY job_id"),
        step("SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY 1"),
        step("SELECT hypertable_name, num_chunks FROM timescaledb_information.hypertables ORDER BY 1"),
        step("SELECT player_id, count(*)::bigint AS n, sum(value) AS s FROM player_actions_ts GROUP BY 1 ORDER BY 1"),
        step("SELECT count(*)::bigint AS n, sum(actions)::bigint AS a FROM action_stats_1min"),
    ]
    before = pglite.check(state)
    assert await ingest_migrate.migrate(pglite_conn, compress_after_days=COMPRESS_AFTER_DAYS) == []
    # The files themselves are re-runnable too (IF NOT EXISTS / if_not_exists everywhere).
    for migration in ingest_migrate.MIGRATIONS.discover():
        await pglite_conn.execute(migration.pick("timescale")[1].read_text())
    assert pglite.check(state) == before
    # Changing the configured age replaces the policy rather than adding a second one.
    await ingest_migrate.tune_timescale(pglite_conn, 9)
    compression = [j for j in pglite.rows("SELECT config FROM timescaledb_information.jobs "
                                          "WHERE proc_name = 'policy_compression'")]
    assert compression == [{"config": {"hypertable_id": compression[0]["config"]["hypertable_id"],
                                       "compress_after": "9 days"}}]


async def test_migrations_persist_and_rerun_on_an_on_disk_database(pglite_available, tmp_path):
    """A fresh data directory migrated, the process stopped, reopened: nothing left to apply."""
    with Server(tmp_path / "pgdata") as first:
        assert await ingest_migrate.migrate(Connection(first)) == [m.version for m in ingest_migrate.MIGRATIONS.discover()]
        first.check([insert_actions(actions("disk-", first.value("SELECT now()") - HOUR, 10, MINUTE))])
    with Server(tmp_path / "pgdata") as second:
        conn = Connection(second)
        assert await ingest_migrate.schema_version(conn) == ingest_migrate.LATEST
        assert await ingest_migrate.migrate(conn) == []
        assert second.value("SELECT count(*) FROM player_actions_ts") == 10
        assert second.value("SELECT count(*) FROM timescaledb_information.jobs "
                            "WHERE proc_name = 'policy_compression'") == 1
        with pytest.raises(SQLError) as err:
            second.rows("SELECT create_hypertable('player_summary', 'first_seen')")  # real errors surface
        assert err.value.code is not None
