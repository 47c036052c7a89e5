"""The runtime's migration runner on a real PostgreSQL: order, checksums, capability variants, a ledger
from before checksums, the hook after migrating, and concurrent runners."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.runtime.migrations import MigrationError, Migrations

LOCK = 0x7465737473  # "tests"


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


@pytest.fixture
async def conn(new_database):
    connection = await asyncpg.connect(new_database("migrations"))
    yield connection
    await connection.close()


async def test_applies_in_order_once_and_refuses_an_edited_file(conn, tmp_path):
    d = _write(tmp_path / "m", {"0002_more.sql": "ALTER TABLE t ADD COLUMN b int;",
                                "0001_base.sql": "CREATE TABLE t (a int);"})
    runner = Migrations(d, lock_key=LOCK)
    assert await runner.current_version(conn) == 0
    assert await runner.upgrade(conn) == [1, 2]
    assert await runner.upgrade(conn) == []
    assert await runner.current_version(conn) == 2 == runner.latest
    await runner.check(conn)
    assert [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")] == ["base", "more"]
    (d / "0001_base.sql").write_text("CREATE TABLE t (a bigint);")
    with pytest.raises(MigrationError, match=r"0001_base \(0001_base.sql\) was changed after it was applied"):
        await runner.upgrade(conn)
    with pytest.raises(MigrationError, match="was changed"):
        await runner.check(conn)


async def test_a_pending_migration_stops_check_and_a_failed_one_leaves_no_trace(conn, tmp_path):
    d = _write(tmp_path / "m", {"0001_base.sql": "CREATE TABLE t (a int);"})
    runner = Migrations(d, lock_key=LOCK)
    await runner.upgrade(conn)
    _write(d, {"0002_broken.sql": "CREATE TABLE u (a int); SELECT no_such_function();"})
    with pytest.raises(MigrationError, match="behind .pending: 0002_broken"):
        await runner.check(conn)
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await runner.upgrade(conn)
    assert await conn.fetchval("SELECT to_regclass('u')") is None  # the file and its ledger row: one transaction
    assert await runner.current_version(conn) == 1


async def test_variants_follow_the_capability_and_are_verified_as_applied(conn, tmp_path):
    d = _write(tmp_path / "m", {"0001_base.sql": "CREATE TABLE t (a int);",
                                "0002_fast.sql": "CREATE TABLE fast (a int);", "0002_slow.sql": "CREATE TABLE slow (a int);"})
    runner = Migrations(d, lock_key=LOCK, variants=("fast", "slow"))
    seen = []

    async def choose(c) -> str:
        return "slow"

    async def after(c, variant) -> None:
        seen.append((variant, await c.fetchval("SELECT count(*) FROM schema_migrations")))

    assert await runner.upgrade(conn, choose=choose, after=after) == [1, 2]
    assert seen == [("slow", 2)]
    assert await conn.fetchval("SELECT to_regclass('slow') IS NOT NULL AND to_regclass('fast') IS NULL")
    (d / "0002_fast.sql").write_text("-- edited, but never applied here")
    assert await runner.upgrade(conn, choose=choose) == []
    (d / "0002_slow.sql").write_text("-- edited after it was applied")
    with pytest.raises(MigrationError, match=r"0002_slow \(0002_slow.sql\) was changed"):
        await runner.upgrade(conn, choose=choose)


async def test_a_ledger_from_before_checksums_is_adopted(conn, tmp_path):
    # The ingest runner's ledger: no checksum column, the file stem as the name.
    await conn.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())")
    await conn.execute("CREATE TABLE t (a int)")
    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, '0001_base'), (2, '0002_plain')")
    d = _write(tmp_path / "m", {"0001_base.sql": "CREATE TABLE t (a int);", "0002_plain.sql": "SELECT 1;",
                                "0002_timescale.sql": "SELECT 2;", "0003_next.sql": "CREATE TABLE n (a int);"})
    runner = Migrations(d, lock_key=LOCK, variants=("timescale", "plain"))

    async def plain(c) -> str:
        return "plain"

    with pytest.raises(MigrationError, match="behind"):
        await runner.check(conn)  # reading an old ledger does not need the column
    assert await runner.upgrade(conn, choose=plain) == [3]
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE checksum IS NULL") == 0
    (d / "0002_plain.sql").write_text("SELECT 3;")
    with pytest.raises(MigrationError, match=r"0002_plain .* was changed"):
        await runner.upgrade(conn, choose=plain)


async def test_a_database_ahead_of_the_build_and_bad_file_names_are_refused(conn, tmp_path):
    d = _write(tmp_path / "m", {"0001_base.sql": "CREATE TABLE t (a int);", "0002_more.sql": "SELECT 1;"})
    await Migrations(d, lock_key=LOCK).upgrade(conn)
    (d / "0002_more.sql").unlink()
    with pytest.raises(MigrationError, match="has migration 0002 .* which this build does not know"):
        await Migrations(d, lock_key=LOCK).upgrade(conn)
    with pytest.raises(MigrationError, match="bad migration file name"):
        Migrations(_write(tmp_path / "bad", {"1_base.sql": ""}), lock_key=LOCK).discover()
    with pytest.raises(MigrationError, match="several files"):
        Migrations(_write(tmp_path / "two", {"0001_a.sql": "", "0001_b.sql": ""}), lock_key=LOCK).discover()
    with pytest.raises(MigrationError, match="several files"):  # a variant alone is not a whole version
        Migrations(_write(tmp_path / "half", {"0001_plain.sql": "", "0001_x.sql": ""}), lock_key=LOCK,
                   variants=("plain", "timescale")).discover()


async def test_concurrent_runners_take_turns(new_database, tmp_path):
    dsn = new_database("migrations_concurrent")
    d = _write(tmp_path / "m", {"0001_base.sql": "CREATE TABLE t (a int); SELECT pg_sleep(0.2);",
                                "0002_more.sql": "ALTER TABLE t ADD COLUMN b int;"})
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(Migrations(d, lock_key=LOCK).upgrade(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(results) == [[], [], [1, 2]]
