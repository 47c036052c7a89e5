"""EnergyUsageService (reported days, meter interpolation, months) and the migration runner."""

from __future__ import annotations

import datetime as dt

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2

from banhammer.energy.v1 import building_pb2, usage_pb2 as pb
from services.energy.store import migrate

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


async def test_migrations_are_versioned_idempotent_and_checksummed(new_database):
    conn = await asyncpg.connect(new_database("energy_migrate"))
    try:
        assert await migrate.current_version(conn) == 0
        applied = await migrate.upgrade(conn)
        assert applied == [m.version for m in migrate.discover()]
        assert await migrate.upgrade(conn) == []
        index = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_sensor_data_building_time'")
        assert "(building_id, recorded_at)" in index
        edited = [migrate.Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrate.discover()]
        with pytest.raises(migrate.MigrationError):
            await migrate.upgrade(conn, edited)
    finally:
        await conn.close()
