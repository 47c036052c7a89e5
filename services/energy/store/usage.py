"""energy_usage_daily and meter_readings tables."""

from __future__ import annotations

import datetime as dt

from services.runtime import InvalidArgument, NotFound
from services.runtime.store_errors import guard

from . import STORE


@guard(STORE)
class UsageStore:
    def __init__(self, pool) -> None:
        self._pool = pool

    async def record(self, daily: list[tuple[int, dt.date, float]],
                     meters: list[tuple[int, dt.datetime, float, str]]) -> None:
        """Upserts both kinds in one transaction; meter registers must stay non-decreasing over time
        (checked per building under an advisory lock, against the stored neighbours)."""
        buildings = sorted({b for b, *_ in daily} | {b for b, *_ in meters})
        async with self._pool.pool.acquire() as conn, conn.transaction():
            found = {r["id"] for r in await conn.fetch("SELECT id FROM buildings WHERE id = ANY($1::bigint[])", buildings)}
            missing = [b for b in buildings if b not in found]
            if missing:
                raise NotFound(f"building(s) not found: {', '.join(map(str, missing[:10]))}")
            for b in sorted({b for b, *_ in meters}):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('energy.meter'), $1::int)", b % 2**31)
                mine = sorted((t, kwh, field) for bb, t, kwh, field in meters if bb == b)
                lo, hi = mine[0][0], mine[-1][0]
                rows = await conn.fetch(
                    "(SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time < $2"
                    " ORDER BY read_time DESC LIMIT 1) UNION ALL"
                    " (SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time BETWEEN $2 AND $3)"
                    " UNION ALL (SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time > $3"
                    " ORDER BY read_time LIMIT 1)", b, lo, hi)
                merged = {r["read_time"]: (r["meter_kwh"], "") for r in rows}
                merged.update({t: (kwh, field) for t, kwh, field in mine})
                previous = None
                for t in sorted(merged):
                    kwh, field = merged[t]
                    if previous is not None and kwh < previous[1]:
                        blame = field or previous[2] or "records"
                        raise InvalidArgument.field(f"{blame}.meter_kwh",
                                                    "meter register must not decrease over read_time")
                    previous = (t, kwh, field)
            if daily:
                await conn.executemany(
                    "INSERT INTO energy_usage_daily (building_id, day, kwh) VALUES ($1, $2, $3)"
                    " ON CONFLICT (building_id, day) DO UPDATE SET kwh = EXCLUDED.kwh, recorded_at = now()", daily)
            if meters:
                await conn.executemany(
                    "INSERT INTO meter_readings (building_id, read_time, meter_kwh) VALUES ($1, $2, $3)"
                    " ON CONFLICT (building_id, read_time) DO UPDATE SET meter_kwh = EXCLUDED.meter_kwh, recorded_at = now()",
                    [(b, t, kwh) for b, t, kwh, _ in meters])

    async def daily(self, building_id: int, first: dt.date, last: dt.date) -> dict[dt.date, float]:
        rows = await self._pool.pool.fetch(
            "SELECT day, kwh FROM energy_usage_daily WHERE building_id = $1 AND day BETWEEN $2 AND $3",
            building_id, first, last)
        return {r["day"]: r["kwh"] for r in rows}

    async def meter_span(self, building_id: int, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, float]]:
        """Readings in [start, end] plus the nearest one outside each end (for interpolation)."""
        rows = await self._pool.pool.fetch(
            "(SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time < $2"
            " ORDER BY read_time DESC LIMIT 1) UNION ALL"
            " (SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time BETWEEN $2 AND $3)"
            " UNION ALL (SELECT read_time, meter_kwh FROM meter_readings WHERE building_id = $1 AND read_time > $3"
            " ORDER BY read_time LIMIT 1)", building_id, start, end)
        return sorted((r["read_time"], r["meter_kwh"]) for r in rows)

    async def building_exists(self, building_id: int) -> bool:
        return await self._pool.pool.fetchval("SELECT EXISTS (SELECT 1 FROM buildings WHERE id = $1)", building_id)
