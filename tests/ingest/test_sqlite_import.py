"""The seed's migration from the old SQLite BanHammer: ``python -m services.ingest import-sqlite``,
against a real SQLite file and a real PostgreSQL (a database of its own, so totals are exact)."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from services.ingest.config import IngestConfig
from services.ingest.sqlite_import import import_command, parse_time_us, run_import
from tests.harness.processes import free_port

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TYPES = ("reward_collection", "kill", "login")


def _old_database(path, rows: int) -> list[tuple]:
    """The old app's table, with the mix of time formats such apps store; returns the good rows."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE player_actions (id INTEGER PRIMARY KEY, player_id TEXT, action TEXT, "
               "value REAL, created_at, details TEXT)")
    good = []
    for i in range(1, rows + 1):
        at = NOW - timedelta(days=i % 9, seconds=i)
        stamp = (at.replace(tzinfo=None).isoformat(sep=" ") if i % 3 == 0 else
                 at.timestamp() if i % 3 == 1 else int(at.timestamp() * 1000))
        details = json.dumps({"i": i}) if i % 5 == 0 else ("note" if i % 7 == 0 else None)
        row = (i, f"old-{i % 300}", TYPES[i % 3], float(i % 50), stamp, details)
        db.execute("INSERT INTO player_actions VALUES (?, ?, ?, ?, ?, ?)", row)
        good.append((row[1], row[2], row[3], at, details))
    bad = [(None, "kill", 1.0, NOW.timestamp(), None),  # no player
           ("old-1", "kill", 1.0, (NOW - timedelta(days=200)).timestamp(), None),  # past retention
           ("old-2", "kill", "lots", NOW.timestamp(), None),  # value is not a number
           ("old-3", "kill", 1.0, "yesterday-ish", None)]  # time does not parse
    db.executemany("INSERT INTO player_actions (player_id, action, value, created_at, details) VALUES (?, ?, ?, ?, ?)", bad)
    db.commit()
    db.close()
    return good


@pytest.fixture
def conf(new_database) -> IngestConfig:
    return IngestConfig(database_url=new_database("sqlite_import"))


async def test_import_is_exact_resumable_and_skips_what_cannot_be_stored(conf, tmp_path):
    source = tmp_path / "banhammer.db"
    good = _old_database(source, 9_000)

    totals = await run_import(conf, str(source), batch_size=4_000)
    assert (totals.read, totals.imported, totals.already_present) == (9_004, 9_000, 0)
    assert (totals.skipped_too_old, totals.skipped_invalid) == (1, 3)

    conn = await asyncpg.connect(conf.database_url)
    try:
        per_player: dict[str, list] = defaultdict(list)
        for p, _, value, at, _ in good:
            per_player[p].append((value, at))
        stored = {r["player_id"]: r for r in await conn.fetch(
            "SELECT player_id, count(*) AS n, sum(value) AS total, min(time) AS first FROM player_actions_ts "
            "GROUP BY 1")}
        assert set(stored) == set(per_player)
        for p, rows in per_player.items():
            assert (stored[p]["n"], stored[p]["total"]) == (len(rows), sum(v for v, _ in rows))
            assert stored[p]["first"] == min(at for _, at in rows)
        # The command folded what it imported: the aggregates are complete when it ends.
        assert await conn.fetchval("SELECT count(*) FROM ingest_pending_top") == 0
        summary = {r["player_id"]: r["n"] for r in await conn.fetch(
            "SELECT player_id, sum(actions) AS n FROM player_hours GROUP BY 1")}
        assert summary == {p: len(rows) for p, rows in per_player.items()}
        assert await conn.fetchval("SELECT sum(actions) FROM action_type_stats_1h") == 9_000
        meta = {r["event_id"]: r["metadata"] for r in await conn.fetch(
            "SELECT event_id, metadata::text FROM player_actions_ts WHERE event_id IN ('sqlite-5', 'sqlite-7', 'sqlite-1')")}
        assert json.loads(meta["sqlite-5"]) == {"i": 5} and json.loads(meta["sqlite-7"]) == {"raw": "note"}
        assert meta["sqlite-1"] is None

        # A re-run stores nothing twice; rows added since are picked up.
        db = sqlite3.connect(source)
        db.executemany("INSERT INTO player_actions (player_id, action, value, created_at) VALUES (?, 'kill', 2.0, ?)",
                       [(f"new-{i}", NOW.isoformat()) for i in range(10)])
        db.commit()
        db.close()
        again = await run_import(conf, str(source), batch_size=10_000)
        assert (again.imported, again.already_present, again.skipped_invalid) == (10, 9_000, 3)
        assert await conn.fetchval("SELECT count(*) FROM player_actions_ts") == 9_010
    finally:
        await conn.close()


async def test_command_reports_a_source_it_cannot_read(conf, tmp_path, capsys):
    assert await import_command(conf, ["--source", str(tmp_path / "missing.db")]) == 2
    assert "not found" in capsys.readouterr().out
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE events (id INTEGER PRIMARY KEY, who TEXT)").connection.commit()
    assert await import_command(conf, ["--source", str(other)]) == 2
    assert "no table player_actions" in capsys.readouterr().out


async def test_command_reports_an_unreachable_database_and_how_to_resume(tmp_path, capsys):
    source = tmp_path / "banhammer.db"
    _old_database(source, 3)
    down = IngestConfig(database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    assert await import_command(down, ["--source", str(source)]) == 1
    assert "run the same command again to resume" in capsys.readouterr().out


def test_time_formats():
    at = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)
    us = int(at.timestamp() * 1_000_000)
    for value in ("2026-03-01 12:30:15.250000", "2026-03-01T12:30:15.25Z", "2026-03-01T13:30:15.25+01:00",
                  at.timestamp(), str(at.timestamp()), int(at.timestamp() * 1000)):
        assert abs(parse_time_us(value) - us) <= 1, value
    assert parse_time_us("soon") is None and parse_time_us(None) is None and parse_time_us(float("nan")) is None
