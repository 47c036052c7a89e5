"""Sensor readings: validation and line-protocol encoding of write batches (the hot path)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from services.runtime import InvalidArgument

from .influx.client import MEASUREMENT
from .influx.lineprotocol import escape_key, escape_measurement, quote_string, unrepresentable
from .models import Reading
from .validation import Violations

MAX_BATCH = 5000
RETENTION_NS = 30 * 86400 * 10**9
FUTURE_NS = 5 * 60 * 10**9

_PREFIX = escape_measurement(MEASUREMENT) + ",building_id="


def _is_clean(value: str) -> bool:
    return value.isprintable() or not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _tag(v: Violations, field: str, value: str, lo: int, hi: int) -> None:
    if value.isascii() and lo <= len(value) <= hi and value.isprintable() and "\\" not in value:
        return  # the common case, decided without encoding
    size = len(value.encode())
    if not lo <= size <= hi:
        v.add(field, f"must be {lo}..{hi} bytes")
    elif not _is_clean(value):
        v.add(field, "must not contain control characters")
    elif unrepresentable(value):
        v.add(field, "a backslash may not end the value or precede a comma, space or equals sign "
                     "(InfluxDB cannot store it)")


def _text(v: Violations, field: str, value: str, hi: int) -> None:
    if value.isascii() and len(value) <= hi and value.isprintable():
        return
    if len(value.encode()) > hi:
        v.add(field, f"must be 0..{hi} bytes")
    elif not _is_clean(value):
        v.add(field, "must not contain control characters")


def check_batch(readings: list[Reading], now_ns: int, field: str = "readings") -> None:
    """All-or-nothing: every violation of the batch, each named readings[i].<field>."""
    v = Violations()
    if not 1 <= len(readings) <= MAX_BATCH:
        v.add(field, f"must hold 1..{MAX_BATCH} readings")
    oldest, newest = now_ns - RETENTION_NS, now_ns + FUTURE_NS
    for i, r in enumerate(readings):
        p = f"{field}[{i}]"
        if r.building_id <= 0:
            v.add(f"{p}.building_id", "must be > 0")
        _tag(v, f"{p}.sensor_type", r.sensor_type, 1, 64)
        if r.floor:
            _tag(v, f"{p}.floor", r.floor, 0, 16)
        if r.room:
            _tag(v, f"{p}.room", r.room, 0, 64)
        if not math.isfinite(r.value):
            v.add(f"{p}.value", "must be finite")
        if r.unit:
            _text(v, f"{p}.unit", r.unit, 20)
        if r.status:
            _text(v, f"{p}.status", r.status, 32)
        if r.time_ns and not oldest <= r.time_ns <= newest:
            v.add(f"{p}.time", "must be within the last 30 days and at most 5 min in the future")
        if len(v.items) > 100:  # enough to fix a batch; keeps the error within message limits
            break
    if v.items:
        raise InvalidArgument(v.items)


def encode_batch(readings: list[Reading], now_ns: int | None = None) -> bytes:
    """Newline-separated lines (no trailing newline); unset times become ``now_ns``."""
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

    lines = []
    append = lines.append
    for r in readings:
        floor = f",floor={tag(r.floor)}" if r.floor else ""
        room = f",room={tag(r.room)}" if r.room else ""
        append(f"{_PREFIX}{r.building_id}{floor}{room},sensor_type={tag(r.sensor_type)} "
               f"value={float(r.value)!r},unit={string(r.unit)},status={string(r.status)} {r.time_ns or now_ns}")
    return "\n".join(lines).encode()


class SensorWrites:
    """Validates, encodes and durably writes batches (InfluxDB or the spool).

    ``on_written`` hears the (building id, sensor type) pairs of each batch InfluxDB took (not of
    spooled ones: they are not queryable yet), for alert evaluation on write."""

    def __init__(self, writer, on_written: Callable[[set[tuple[int, str]]], None] | None = None) -> None:
        self.writer = writer
        self.on_written = on_written

    async def write(self, readings: list[Reading], field: str = "readings") -> bool:
        now_ns = time.time_ns()
        check_batch(readings, now_ns, field)
        spooled = await self.writer.write(encode_batch(readings, now_ns), len(readings))
        if not spooled and self.on_written is not None:
            self.on_written({(r.building_id, r.sensor_type) for r in readings})
        return spooled
