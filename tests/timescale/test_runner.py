"""The contract of tools/pglite/run_sql.mjs (one-shot mode): JSON in, JSON out, real PostgreSQL."""

from __future__ import annotations

import pytest

from .pglite import run_steps, step

pytestmark = pytest.mark.timescale


def test_one_shot_job_values_errors_and_persistence(pglite_available, tmp_path):
    data_dir = tmp_path / "pgdata"
    results = run_steps([
        step("SELECT 9007199254740993::int8 AS big, 2.50::numeric AS n, "
             "'2025-01-31T12:00:00.250Z'::timestamptz AS t, $1::jsonb AS j, INTERVAL '7 days' AS i, "
             "'infinity'::timestamptz AS inf, $2::text AS p", '{"a": [1, 2]}', "x"),
        step("CREATE TABLE kept (time timestamptz NOT NULL, v int); "
             "SELECT create_hypertable('kept', 'time'); INSERT INTO kept VALUES (now(), 1), (now(), 2); "
             "SELECT sum(v) AS s FROM kept", multi=True),
        step("SELECT * FROM no_such_table"),
        step("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"),
    ], data_dir=data_dir)
    assert results[0]["rows"] == [{"big": "9007199254740993", "n": "2.50", "t": "2025-01-31T12:00:00.250Z",
                                   "j": {"a": [1, 2]}, "i": "7 days", "inf": "infinity", "p": "x"}]
    assert [f["name"] for f in results[0]["fields"]] == ["big", "n", "t", "j", "i", "inf", "p"]
    assert results[1]["rows"] == [{"s": "3"}] and results[1]["statements"] == 4
    assert results[2]["code"] == "42P01" and "no_such_table" in results[2]["error"]
    assert results[3]["rows"][0]["extversion"].startswith("2.23")

    # Same data_dir, new process: the hypertable and its rows are still there; stop_on_error skips.
    again = run_steps([step("SELECT count(*)::int AS n FROM kept"),
                       step("SELECT hypertable_name FROM timescaledb_information.hypertables"),
                       step("SELECT 1/0"), step("SELECT 1")], data_dir=data_dir, stop_on_error=True)
    assert again[0]["rows"] == [{"n": 2}]
    assert again[1]["rows"] == [{"hypertable_name": "kept"}]
    assert again[2]["code"] == "22012" and again[3] == {"skipped": True}
