"""Reading queries: windowed aggregates grouped by tags, latest values, hourly energy, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services.runtime import InvalidArgument
from services.runtime.store_errors import guard
from services.runtime.validation import Seconds

from .influx.client import InfluxClient, InfluxRejected, quote_ident, quote_literal
from .validation import Violations

MAX_SPAN_NS = 30 * 86400 * 10**9
MIN_WINDOW, MAX_WINDOW = dt.timedelta(seconds=1), dt.timedelta(days=1)
#: How sensor storage is named in errors ("sensor storage (InfluxDB) unavailable").
STORE = "sensor storage (InfluxDB)"
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


def _range(v: Violations, start: Seconds | None, end: Seconds | None, now_ns: int) -> tuple[int, int]:
    """[start, end) in ns; start required, end defaults to now; InfluxDB's int64 ns range."""
    if start is None:
        v.add("time_range.start_time", "is required")
        return 0, 0
    start_ns = v.timestamp_ns("time_range.start_time", start)
    end_ns = now_ns if end is None else v.timestamp_ns("time_range.end_time", end)
    if start_ns is None or end_ns is None:
        return 0, 0
    if end_ns <= start_ns:
        v.add("time_range.end_time", "must be after start_time")
    elif end_ns - start_ns > MAX_SPAN_NS:
        v.add("time_range", "must span at most 30 days")
    return start_ns, end_ns


def _filter(v: Violations, f: Filter, prefix: str = "filter") -> None:
    for name, items, limit in (("building_ids", f.building_ids, 100), ("sensor_types", f.sensor_types, 20),
                               ("floors", f.floors, 100), ("rooms", f.rooms, 100)):
        if len(items) > limit:
            v.add(f"{prefix}.{name}", f"at most {limit} values")
    for i, b in enumerate(f.building_ids[:100]):
        v.positive_id(f"{prefix}.building_ids[{i}]", b)
    for name, tag, items in (("sensor_types", "sensor_type", f.sensor_types), ("floors", "floor", f.floors),
                             ("rooms", "room", f.rooms)):
        for i, value in enumerate(items[:100]):
            v.tag(f"{prefix}.{name}[{i}]", tag, value)


def _check_aggregate(start: Seconds | None, end: Seconds | None, window: Seconds | None, aggregate: int,
                     group_by: list[int], f: Filter, now_ns: int) -> tuple[int, int, int]:
    """(start ns, end ns, window s) of a valid QueryReadings request; INVALID_ARGUMENT otherwise."""
    v = Violations()
    start_ns, end_ns = _range(v, start, end, now_ns)
    size = None if window is None else v.duration("window", window, MIN_WINDOW, MAX_WINDOW)
    if size is not None and size % MIN_WINDOW:
        v.add("window", "must be whole seconds")
    elif window is None:
        v.add("window", "is required")
    if aggregate not in AGGREGATES:
        v.add("aggregate", "must be MEAN, MIN, MAX or LAST")
    if len(group_by) > len(TAGS):
        v.add("group_by", f"at most {len(TAGS)} tags")
    elif len(set(group_by)) != len(group_by):
        v.add("group_by", "must not repeat a tag")
    for i, tag in enumerate(group_by[:len(TAGS)]):
        if tag not in TAGS:
            v.add(f"group_by[{i}]", "must be a known tag")
    _filter(v, f)
    v.raise_if_any()
    return start_ns, end_ns, size // MIN_WINDOW


def _check_export(start: Seconds | None, end: Seconds | None, f: Filter, now_ns: int) -> tuple[int, int]:
    """(start ns, end ns) of a valid ExportReadingsCsv request; INVALID_ARGUMENT otherwise."""
    v = Violations()
    span = _range(v, start, end, now_ns)
    _filter(v, f)
    v.raise_if_any()
    return span


def where(f: Filter, start_ns: int, end_ns: int) -> str:
    clauses = [f"time >= {start_ns} AND time < {end_ns}"]
    for tag, values in (("building_id", [str(b) for b in f.building_ids]), ("sensor_type", f.sensor_types),
                        ("floor", f.floors), ("room", f.rooms)):
        if values:
            clauses.append("(" + " OR ".join(f"{quote_ident(tag)} = {quote_literal(x)}" for x in values) + ")")
    return " AND ".join(clauses)


class SensorQueries:
    def __init__(self, influx: InfluxClient) -> None:
        self.influx = influx

    @guard(STORE, retry_after=2.0)
    async def _query(self, q: str) -> list[dict]:
        try:
            return await self.influx.query(q)
        except InfluxRejected as exc:
            if "database not found" in str(exc) or "retention policy not found" in str(exc):
                return []  # nothing written yet
            raise

    async def aggregate(self, start: Seconds | None, end: Seconds | None, window: Seconds | None, aggregate: int,
                        group_by: list[int], f: Filter) -> list[Series]:
        """``aggregate`` of the readings matching ``f`` in [start, end) per window and tag group."""
        start_ns, end_ns, window_s = _check_aggregate(start, end, window, aggregate, group_by, f, time.time_ns())
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

    async def export_csv(self, start: Seconds | None, end: Seconds | None, f: Filter) -> AsyncIterator[bytes]:
        """RFC 4180 CSV in chunks of at most 64 KiB, rows ordered by time (keyset pages by time)."""
        start_ns, end_ns = _check_export(start, end, f, time.time_ns())
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
