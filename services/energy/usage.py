"""Energy usage: recording reported days and meter registers; daily and monthly reports.

A day's usage is its reported total when one exists, else the meter register interpolated linearly at
the next UTC midnight minus the same at its own midnight (both midnights must lie between readings).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass

from services.runtime import NotFound
from services.runtime.validation import Seconds

from .store.usage import UsageStore
from .validation import Violations

UTC = dt.timezone.utc


@dataclass(frozen=True)
class UsageRecord:
    building_id: int
    daily_date: str | None = None
    daily_kwh: float = 0.0
    read_time: Seconds | None = None  # a Timestamp, validated here
    meter_kwh: float = 0.0


#: Meter registers are read in the present era: nothing earlier is accepted.
EARLIEST_READING = dt.datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DayUsage:
    day: dt.date
    kwh: float
    derived: bool


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def interpolate(readings: list[tuple[dt.datetime, float]], at: dt.datetime) -> float | None:
    times = [t for t, _ in readings]
    i = bisect.bisect_left(times, at)
    if i < len(times) and times[i] == at:
        return readings[i][1]
    if i == 0 or i == len(times):
        return None
    (t0, v0), (t1, v1) = readings[i - 1], readings[i]
    return v0 + (v1 - v0) * ((at - t0) / (t1 - t0))


def derive_days(readings: list[tuple[dt.datetime, float]], first: dt.date, last: dt.date) -> dict[dt.date, float]:
    out = {}
    day = first
    at = interpolate(readings, _midnight(day))
    while day <= last:
        nxt = day + dt.timedelta(days=1)
        at_next = interpolate(readings, _midnight(nxt))
        if at is not None and at_next is not None:
            out[day] = at_next - at
        day, at = nxt, at_next
    return out


class Usage:
    def __init__(self, store: UsageStore) -> None:
        self.store = store

    async def record(self, records: list[UsageRecord], now: dt.datetime) -> int:
        v = Violations()
        if not 1 <= len(records) <= 1000:
            v.add("records", "must hold 1..1000 records")
        daily, meters = [], []
        for i, r in enumerate(records):
            p = f"records[{i}]"
            v.positive_id(f"{p}.building_id", r.building_id)
            if r.daily_date is not None:
                day = v.date(f"{p}.daily.date", r.daily_date)
                if day and day > now.date():
                    v.add(f"{p}.daily.date", "must not be in the future")
                if not (math.isfinite(r.daily_kwh) and 0 <= r.daily_kwh <= 10_000_000):
                    v.add(f"{p}.daily.kwh", "must be finite, 0..10,000,000")
                if day:
                    daily.append((r.building_id, day, r.daily_kwh))
            elif r.read_time is not None:
                read_time = v.timestamp(f"{p}.meter_reading.read_time", r.read_time, EARLIEST_READING, now)
                if not (math.isfinite(r.meter_kwh) and r.meter_kwh >= 0):
                    v.add(f"{p}.meter_reading.meter_kwh", "must be finite and >= 0")
                meters.append((r.building_id, read_time, r.meter_kwh, f"{p}.meter_reading"))
            else:
                v.add(f"{p}.measurement", "exactly one of meter_reading or daily must be set")
        # Within one request, the last record for a (building, day/time) wins, like a replay would.
        v.raise_if_any()
        daily = list({(b, d): (b, d, k) for b, d, k in daily}.values())
        meters = list({(b, t): (b, t, k, f) for b, t, k, f in meters}.values())
        await self.store.record(daily, meters)
        return len(records)

    async def daily(self, building_id: int, start: str, end: str) -> list[DayUsage]:
        v = Violations()
        v.positive_id("building_id", building_id)
        first, last = v.date("start_date", start), v.date("end_date", end)
        if first and last:
            if last < first:
                v.add("end_date", "must not be before start_date")
            elif (last - first).days + 1 > 366:
                v.add("end_date", "at most 366 days in the range")
        v.raise_if_any()
        return await self._days(building_id, first, last)

    async def _days(self, building_id: int, first: dt.date, last: dt.date) -> list[DayUsage]:
        if not await self.store.building_exists(building_id):
            raise NotFound(f"building {building_id} not found")
        reported = await self.store.daily(building_id, first, last)
        readings = await self.store.meter_span(building_id, _midnight(first), _midnight(last + dt.timedelta(days=1)))
        derived = derive_days(readings, first, last)
        days = {d: DayUsage(d, k, True) for d, k in derived.items()}
        days.update({d: DayUsage(d, k, False) for d, k in reported.items()})
        return [days[d] for d in sorted(days)]

    async def monthly(self, building_id: int, start: str, end: str) -> list[tuple[str, float, int]]:
        v = Violations()
        v.positive_id("building_id", building_id)
        first, last = v.month("start_month", start), v.month("end_month", end)
        if first and last:
            months = (last.year - first.year) * 12 + last.month - first.month + 1
            if months < 1:
                v.add("end_month", "must not be before start_month")
            elif months > 120:
                v.add("end_month", "at most 120 months in the range")
        v.raise_if_any()
        end_day = (dt.date(last.year + (last.month == 12), last.month % 12 + 1, 1) - dt.timedelta(days=1))
        totals: dict[str, list] = {}
        for d in await self._days(building_id, first, end_day):
            entry = totals.setdefault(d.day.strftime("%Y-%m"), [0.0, 0])
            entry[0] += d.kwh
            entry[1] += 1
        return [(m, kwh, n) for m, (kwh, n) in sorted(totals.items())]
