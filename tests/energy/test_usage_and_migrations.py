"""EnergyUsageService (reported days, meter interpolation, months) and the migration runner."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2

from banhammer.energy.v1 import building_pb2, usage_pb2 as pb
from services.energy.store.migrate import MIGRATIONS
from services.runtime.migrations import MigrationError, Migrations
from tests.harness.paths import REPO

from .helpers import expect_error, violations

UTC = dt.timezone.utc


def _ts(text: str) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt.datetime.fromisoformat(text).replace(tzinfo=UTC))
    return out


def meter(b: int, when: str, kwh: float) -> pb.UsageRecord:
    return pb.UsageRecord(building_id=b, meter_reading=pb.MeterReading(read_time=_ts(when), meter_kwh=kwh))


def daily(b: int, date: str, kwh: float) -> pb.UsageRecord:
    return pb.UsageRecord(building_id=b, daily=pb.DailyConsumption(date=date, kwh=kwh))


async def _building(stubs) -> int:
    return (await stubs.buildings.CreateBuilding(building_pb2.CreateBuildingRequest(
        building=building_pb2.Building(name="Usage", address="x")))).building.building_id


async def test_daily_from_reports_and_meter_interpolation(stubs):
    b = await _building(stubs)
    # Meter: 100 kWh at noon Jan 1, 148 at noon Jan 3 (linear: 24/day), 160 at 06:00 Jan 4.
    await stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[
        meter(b, "2024-01-01T12:00:00", 100), meter(b, "2024-01-03T12:00:00", 148),
        meter(b, "2024-01-04T06:00:00", 160), daily(b, "2024-01-10", 30.5)]))
    got = await stubs.usage.GetDailyUsage(pb.GetDailyUsageRequest(building_id=b, start_date="2024-01-01",
                                                                  end_date="2024-01-31"))
    days = {d.date: (round(d.kwh, 6), d.derived_from_meter) for d in got.days}
    # Jan 2: 00:00 -> 112, 24:00 -> 136 => 24. Jan 3: 136 -> 148 + 12*(12/18) = 156 => 20.
    assert days == {"2024-01-02": (24.0, True), "2024-01-03": (20.0, True), "2024-01-10": (30.5, False)}
    assert got.total_kwh == pytest.approx(74.5)
    # A reported day overrides the derived one; a retry (same key) replaces instead of adding.
    for _ in range(2):
        await stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[daily(b, "2024-01-02", 50)]))
    got = await stubs.usage.GetDailyUsage(pb.GetDailyUsageRequest(building_id=b, start_date="2024-01-02",
                                                                  end_date="2024-01-02"))
    assert [(d.kwh, d.derived_from_meter) for d in got.days] == [(50.0, False)]
    months = await stubs.usage.GetMonthlyUsage(pb.GetMonthlyUsageRequest(building_id=b, start_month="2023-12",
                                                                         end_month="2024-02"))
    assert [(m.month, round(m.kwh, 6), m.days_with_data) for m in months.months] == [("2024-01", 100.5, 3)]


async def test_meter_must_not_decrease_and_batches_are_atomic(stubs):
    b = await _building(stubs)
    await stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[meter(b, "2024-02-01T00:00:00", 500)]))
    err = await expect_error(stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[
        daily(b, "2024-02-05", 9), meter(b, "2024-02-02T00:00:00", 400)])), grpc.StatusCode.INVALID_ARGUMENT)
    assert "records[1].meter_reading.meter_kwh" in violations(err)
    got = await stubs.usage.GetDailyUsage(pb.GetDailyUsageRequest(building_id=b, start_date="2024-02-01",
                                                                  end_date="2024-02-28"))
    assert not got.days  # the valid daily record of the refused batch was not kept


async def test_usage_validation(stubs):
    b = await _building(stubs)
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    err = await expect_error(stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[
        daily(b, future, 1), daily(b, "2024-02-30", 1), daily(b, "2024-01-01", float("nan")),
        pb.UsageRecord(building_id=b), meter(0, "2024-01-01T00:00:00", -1)])), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"records[0].daily.date", "records[1].daily.date", "records[2].daily.kwh",
                                    "records[3].measurement", "records[4].building_id",
                                    "records[4].meter_reading.meter_kwh"}
    await expect_error(stubs.usage.RecordUsage(pb.RecordUsageRequest(records=[daily(10**12, "2024-01-01", 1)])),
                       grpc.StatusCode.NOT_FOUND)
    await expect_error(stubs.usage.GetDailyUsage(pb.GetDailyUsageRequest(
        building_id=b, start_date="2023-01-01", end_date="2024-01-02")), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_error(stubs.usage.GetMonthlyUsage(pb.GetMonthlyUsageRequest(
        building_id=b, start_month="2024-03", end_month="2024-02")), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_error(stubs.usage.GetDailyUsage(pb.GetDailyUsageRequest(
        building_id=10**12, start_date="2024-01-01", end_date="2024-01-02")), grpc.StatusCode.NOT_FOUND)


async def test_migrations_are_versioned_idempotent_and_checksummed(new_database, tmp_path):
    conn = await asyncpg.connect(new_database("energy_migrate"))
    try:
        assert await MIGRATIONS.current_version(conn) == 0
        with pytest.raises(MigrationError, match="no schema yet"):
            await MIGRATIONS.check(conn)
        applied = await MIGRATIONS.upgrade(conn)
        assert applied == [m.version for m in MIGRATIONS.discover()]
        assert await MIGRATIONS.upgrade(conn) == []
        await MIGRATIONS.check(conn)
        index = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_sensor_data_building_time'")
        assert "(building_id, recorded_at)" in index
        # The same files, one edited after it was applied: refused, naming the file.
        edited = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS.directory, edited)
        first = sorted(edited.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        changed = Migrations(edited, lock_key=MIGRATIONS.lock_key)
        for attempt in (changed.upgrade(conn), changed.check(conn)):
            with pytest.raises(MigrationError, match=f"{first.name}.* was changed after it was applied"):
                await attempt
    finally:
        await conn.close()


async def test_the_migrate_command_reports_an_edited_migration_in_one_line(new_database, tmp_path):
    dsn = new_database("energy_migrate_cli")
    env = {**os.environ, "ENERGY_DATABASE_URL": dsn, "INFLUXDB_URL": "http://127.0.0.1:9", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "LOG_LEVEL": "WARNING"}
    first = subprocess.run([sys.executable, "-m", "services.energy", "migrate"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "applied 1 migration(s)" in first.stdout, first.stderr
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'not-the-file' WHERE version = 1")
    finally:
        await conn.close()
    again = subprocess.run([sys.executable, "-m", "services.energy", "migrate"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert again.stderr.strip().startswith("migrate: migration 0001_initial (0001_initial.sql) was changed")
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
