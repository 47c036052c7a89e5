"""Sensor readings: validation and line-protocol encoding of write batches (the hot path)."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable

from services.runtime import InvalidArgument
from services.runtime.validation import has_control

from .influx.client import MEASUREMENT
from .influx.lineprotocol import escape_key, escape_measurement, quote_string
from .models import Reading, Series
from .validation import TAGS, Violations, tag_error

MAX_BATCH = 5000
RETENTION_NS = 30 * 86400 * 10**9
FUTURE_NS = 5 * 60 * 10**9

_PREFIX = escape_measurement(MEASUREMENT) + ",building_id="


def _text_error(value: str, hi: int) -> str | None:
    if value.isascii() and len(value) <= hi and value.isprintable():
        return None
    if len(value.encode()) > hi:
        return f"must be 0..{hi} bytes"
    if has_control(value):
        return "must not contain control characters"
    return None


class _Verdicts(dict):
    """Per batch and field: each distinct value is checked once (tags and units repeat a lot)."""

    def __init__(self, check) -> None:
        super().__init__()
        self.check = check

    def __missing__(self, value: str) -> str | None:
        out = self[value] = self.check(value)
        return out


def check_batch(readings: list[Reading], now_ns: int, field: str = "readings",
                locate: Callable[[int, str], str] | None = None) -> None:
    """All-or-nothing: every violation of the batch, each named readings[i].<field> (``locate(i,
    name)`` names them otherwise, e.g. inside columnar series); a repeated one is reported once."""
    where = locate or (lambda i, name: f"{field}[{i}].{name}")
    v = Violations()
    reported: set[tuple[str, str]] = set()

    def add(i: int, name: str, message: str) -> None:
        path = where(i, name)
        if (path, message) not in reported:
            reported.add((path, message))
            v.add(path, message)

    if not 1 <= len(readings) <= MAX_BATCH:
        v.add(field, f"must hold 1..{MAX_BATCH} readings")
    oldest, newest = now_ns - RETENTION_NS, now_ns + FUTURE_NS
    sensor = _Verdicts(lambda x: tag_error(x, *TAGS["sensor_type"]))
    floor = _Verdicts(lambda x: tag_error(x, *TAGS["floor"]))
    room = _Verdicts(lambda x: tag_error(x, *TAGS["room"]))
    unit = _Verdicts(lambda x: _text_error(x, 20) if x else None)
    status = _Verdicts(lambda x: _text_error(x, 32) if x else None)
    isfinite = math.isfinite
    for i, r in enumerate(readings):
        if (r.building_id > 0 and not (sensor[r.sensor_type] or floor[r.floor] or room[r.room] or unit[r.unit]
                                       or status[r.status]) and isfinite(r.value)
                and (not r.time_ns or oldest <= r.time_ns <= newest)):
            continue  # the common case: one test per reading
        if r.building_id <= 0:
            add(i, "building_id", "must be > 0")
        for name, verdicts, value in (("sensor_type", sensor, r.sensor_type), ("floor", floor, r.floor),
                                      ("room", room, r.room)):
            if error := verdicts[value]:
                add(i, name, error)
        if not isfinite(r.value):
            add(i, "value", "must be finite")
        for name, verdicts, value in (("unit", unit, r.unit), ("status", status, r.status)):
            if error := verdicts[value]:
                add(i, name, error)
        if r.time_ns and not oldest <= r.time_ns <= newest:
            add(i, "time", "must be within the last 30 days and at most 5 min in the future")
        if len(v.items) > 100:  # enough to fix a batch; keeps the error within message limits
            break
    if v.items:
        raise InvalidArgument(v.items)


def encode_batch(readings: list[Reading], now_ns: int | None = None, heads: dict[tuple, str] | None = None) -> bytes:
    """Newline-separated lines (no trailing newline); unset times become ``now_ns``. ``heads``, if
    given, is left holding the batch's series as keys: (building_id, floor, room, sensor_type)."""
    now_ns = now_ns or time.time_ns()
    tags: dict[str, str] = {}  # escaped tag values repeat a lot within a batch
    strings: dict[str, str] = {}

    def tag(value: str) -> str:
        out = tags.get(value)
        if out is None:
            out = tags[value] = escape_key(value)
        return out

    def string(value: str) -> str:
        out = strings.get(value)
        if out is None:
            out = strings[value] = quote_string(value)
        return out

    # A batch repeats few series (building, floor, room, sensor) and few unit/status pairs: each
    # line's text before and after its value is built once per distinct one.
    heads = {} if heads is None else heads
    tails: dict[tuple, str] = {}
    lines = []
    append = lines.append
    for r in readings:
        series = (r.building_id, r.floor, r.room, r.sensor_type)
        head = heads.get(series)
        if head is None:
            floor = f",floor={tag(r.floor)}" if r.floor else ""
            room = f",room={tag(r.room)}" if r.room else ""
            head = heads[series] = f"{_PREFIX}{r.building_id}{floor}{room},sensor_type={tag(r.sensor_type)} value="
        fields = (r.unit, r.status)
        tail = tails.get(fields)
        if tail is None:
            tail = tails[fields] = f",unit={string(r.unit)},status={string(r.status)} "
        append(f"{head}{float(r.value)!r}{tail}{r.time_ns or now_ns}")
    return "\n".join(lines).encode()


def flatten(readings: list[Reading], series: list[Series]) -> tuple[list[Reading], Callable[[int, str], str] | None]:
    """``readings`` followed by every value of ``series`` as a Reading, and how to name a flattened
    index's fields in the request (None: no series, the default names apply). Raises
    InvalidArgument for series whose arrays do not line up."""
    if not series:
        return readings, None
    v = Violations()
    starts: list[int] = []
    out = list(readings)
    new = tuple.__new__
    for k, s in enumerate(series):
        if not s.values:
            v.add(f"series[{k}].values", "must hold at least one value")
        if s.times and len(s.times) != len(s.values):
            v.add(f"series[{k}].times_unix_nano", "must be empty or hold one time per value")
        if v.items:
            continue
        starts.append(len(out))
        tags = (s.building_id, s.sensor_type, s.floor, s.room)
        times = s.times or (0,) * len(s.values)
        out.extend(new(Reading, (*tags, value, s.unit, s.status, t)) for value, t in zip(s.values, times))
    v.raise_if_any()
    first = len(readings)
    names = {"value": "values", "time": "times_unix_nano"}

    def locate(i: int, name: str) -> str:
        if i < first:
            return f"readings[{i}].{name}"
        k = bisect.bisect_right(starts, i) - 1
        if name in names:
            return f"series[{k}].{names[name]}[{i - starts[k]}]"
        return f"series[{k}].{name}"

    return out, locate


class SensorWrites:
    """Validates, encodes and durably writes batches (InfluxDB or the spool).

    ``on_written`` hears the (building id, sensor type) pairs of each batch InfluxDB took (not of
    spooled ones: they are not queryable yet), for alert evaluation on write."""

    def __init__(self, writer, on_written: Callable[[set[tuple[int, str]]], None] | None = None) -> None:
        self.writer = writer
        self.on_written = on_written

    async def write(self, readings: list[Reading], field: str = "readings", series: list[Series] = ()) -> bool:
        now_ns = time.time_ns()
        readings, locate = flatten(readings, list(series))
        check_batch(readings, now_ns, field, locate)
        series: dict[tuple, str] = {}
        spooled = await self.writer.write(encode_batch(readings, now_ns, series), len(readings))
        if not spooled and self.on_written is not None:
            self.on_written({(building, sensor) for building, _, _, sensor in series})
        return spooled
