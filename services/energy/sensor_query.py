"""Reading queries: windowed aggregates grouped by tags, latest values, hourly energy, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services.runtime import InvalidArgument, Unavailable

from .influx.client import InfluxClient, InfluxRejected, InfluxUnavailable, quote_ident, quote_literal
from .validation import Violations

MAX_SPAN_NS = 30 * 86400 * 10**9
MAX_POINTS = 100_000
AGGREGATES = {1: "mean", 2: "min", 3: "max", 4: "last"}
TAGS = {1: "building_id", 2: "sensor_type", 3: "floor", 4: "room"}
CSV_HEADER = ["time", "building_id", "sensor_type", "floor", "room", "value", "unit", "status"]
EXPORT_PAGE = 10_000
CHUNK_BYTES = 64 * 1024


@dataclass
class Filter:
    building_ids: list[int] = field(default_factory=list)
    sensor_types: list[str] = field(default_factory=list)
    floors: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)


@dataclass
class Series:
    tags: dict[str, str]
    points: list[tuple[int, float, int]]  # (window start ns, value, count)


def check_range(v: Violations, start_ns: int | None, end_ns: int | None, now_ns: int) -> tuple[int, int]:
    if start_ns is None:
        v.add("time_range.start_time", "is required")
        return 0, 0
    end = end_ns if end_ns is not None else now_ns
    if end <= start_ns:
        v.add("time_range.end_time", "must be after start_time")
    elif end - start_ns > MAX_SPAN_NS:
        v.add("time_range", "must span at most 30 days")
    return start_ns, end


def check_filter(v: Violations, f: Filter, prefix: str = "filter") -> None:
    for name, items, limit in (("building_ids", f.building_ids, 100), ("sensor_types", f.sensor_types, 20),
                               ("floors", f.floors, 100), ("rooms", f.rooms, 100)):
        if len(items) > limit:
            v.add(f"{prefix}.{name}", f"at most {limit} values")
    for i, b in enumerate(f.building_ids):
        if b <= 0:
            v.add(f"{prefix}.building_ids[{i}]", "must be > 0")


def where(f: Filter, start_ns: int, end_ns: int) -> str:
    clauses = [f"time >= {start_ns} AND time < {end_ns}"]
    for tag, values in (("building_id", [str(b) for b in f.building_ids]), ("sensor_type", f.sensor_types),
                        ("floor", f.floors), ("room", f.rooms)):
        if values:
            clauses.append("(" + " OR ".join(f"{quote_ident(tag)} = {quote_literal(x)}" for x in values) + ")")
    return " AND ".join(clauses)


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable("sensor storage (InfluxDB) unavailable", retry_after=2)


class SensorQueries:
    def __init__(self, influx: InfluxClient) -> None:
        self.influx = influx

    async def _query(self, q: str) -> list[dict]:
        try:
            return await self.influx.query(q)
        except InfluxUnavailable as exc:
            raise _unavailable(exc) from None
        except InfluxRejected as exc:
            if "database not found" in str(exc) or "retention policy not found" in str(exc):
                return []  # nothing written yet
            raise

    async def aggregate(self, start_ns: int, end_ns: int, window_s: int, aggregate: int, group_by: list[int],
                        f: Filter) -> list[Series]:
        if (end_ns - start_ns) // (window_s * 10**9) > MAX_POINTS:
            raise InvalidArgument.field("window", "more than 100,000 windows: use a larger window or a narrower range")
        tags = ["sensor_type"] + [TAGS[g] for g in group_by if TAGS[g] != "sensor_type"]
        fn = AGGREGATES[aggregate]
        q = (f"SELECT {fn}(value) AS v, count(value) AS n FROM {self.influx.qualified_measurement} "
             f"WHERE {where(f, start_ns, end_ns)} GROUP BY time({window_s}s), "
             + ", ".join(quote_ident(t) for t in tags) + " fill(none)")
        out, total = [], 0
        for s in await self._query(q):
            points = [(row["time"], float(row["v"]), int(row["n"])) for row in s["rows"] if row["n"]]
            total += len(points)
            if total > MAX_POINTS:
                raise InvalidArgument.field("window", "more than 100,000 points: use a larger window or a narrower range")
            if points:
                out.append(Series({t: s["tags"].get(t, "") for t in tags}, points))
        out.sort(key=lambda s: tuple(s.tags[t] for t in sorted(s.tags)))
        return out

    async def latest(self, building_id: int, since_ns: int, limit: int) -> list[dict]:
        """Latest reading per (sensor_type, floor, room) of a building since ``since_ns``."""
        q = (f"SELECT last(value) AS value, unit, status FROM {self.influx.qualified_measurement} "
             f"WHERE building_id = {quote_literal(str(building_id))} AND time >= {since_ns} "
             f"GROUP BY sensor_type, floor, room SLIMIT {limit}")
        return [dict(s["tags"], **s["rows"][0]) for s in await self._query(q) if s["rows"]]

    async def hourly_kwh(self, building_id: int, sensor_type: str, start_ns: int, end_ns: int) -> dict[int, float]:
        """kWh per UTC hour: the mean power (kW) of each floor/room series over the hour, summed."""
        inner = (f"SELECT mean(value) AS kw FROM {self.influx.qualified_measurement} "
                 f"WHERE building_id = {quote_literal(str(building_id))} AND sensor_type = {quote_literal(sensor_type)} "
                 f"AND time >= {start_ns} AND time < {end_ns} GROUP BY time(1h), floor, room fill(none)")
        q = f"SELECT sum(kw) AS kwh FROM ({inner}) WHERE time >= {start_ns} AND time < {end_ns} GROUP BY time(1h) fill(none)"
        rows = await self._query(q)
        return {row["time"]: float(row["kwh"]) for s in rows for row in s["rows"] if row["kwh"] is not None}

    async def export_csv(self, start_ns: int, end_ns: int, f: Filter) -> AsyncIterator[bytes]:
        """RFC 4180 CSV in chunks of at most 64 KiB, rows ordered by time (keyset pages by time)."""
        pending = bytearray(_csv_row(CSV_HEADER))
        cursor, seen_at_cursor = start_ns, 0
        while True:
            q = (f"SELECT value, unit, status, building_id, sensor_type, floor, room "
                 f"FROM {self.influx.qualified_measurement} WHERE {where(f, cursor, end_ns)} "
                 f"LIMIT {EXPORT_PAGE + seen_at_cursor}")
            series = await self._query(q)
            rows = series[0]["rows"] if series else []
            for row in rows[seen_at_cursor:]:
                pending += _csv_row([rfc3339_ns(row["time"]), row["building_id"] or "", row["sensor_type"] or "",
                                     row["floor"] or "", row["room"] or "", repr(float(row["value"])),
                                     row["unit"] or "", row["status"] or ""])
                while len(pending) >= CHUNK_BYTES:
                    yield bytes(pending[:CHUNK_BYTES])
                    del pending[:CHUNK_BYTES]
            if len(rows) < EXPORT_PAGE + seen_at_cursor:
                break
            # Next page from the last timestamp, skipping the rows at it already written.
            last = rows[-1]["time"]
            seen_at_cursor = sum(1 for r in rows if r["time"] == last)
            cursor = last
        if pending:
            yield bytes(pending)


def _csv_row(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue().encode()


def rfc3339_ns(ns: int) -> str:
    seconds, frac = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
