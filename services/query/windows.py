"""Splitting a time window into rollup-sized pieces.

A window [start, end) is answered from three sources so that no raw row is scanned except at its
ragged edges, and the answer still equals a raw-data computation over exactly [start, end):

    raw [b0,b1) | 1min [b1,b2) | 1h [b2,b3) | 1min [b3,b4) | raw [b4,b5)

b0 = start and b5 = end; the raw edges are each shorter than a minute, the minute pieces shorter
than an hour. Degenerate pieces are empty ranges (lo == hi), so one SQL statement serves every
case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_to(t: datetime, step: timedelta) -> datetime:
    """``t`` rounded down to a multiple of ``step`` since the Unix epoch (UTC buckets)."""
    return t - (t - _EPOCH) % step


def ceil_to(t: datetime, step: timedelta) -> datetime:
    floor = floor_to(t, step)
    return floor if floor == t else floor + step


@dataclass(frozen=True)
class Split:
    """Boundaries b0 <= ... <= b5 (see the module docstring)."""

    b0: datetime
    b1: datetime
    b2: datetime
    b3: datetime
    b4: datetime
    b5: datetime

    def params(self) -> tuple[datetime, ...]:
        return (self.b0, self.b1, self.b2, self.b3, self.b4, self.b5)

    @property
    def raw_span(self) -> timedelta:
        """Total time read from raw rows (at most two minutes)."""
        return (self.b1 - self.b0) + (self.b5 - self.b4)


def split(start: datetime, end: datetime, *, hours: bool = True) -> Split:
    """Pieces of [start, end); ``hours=False`` stops at minute granularity (per-minute output)."""
    if end <= start:
        return Split(start, start, start, start, start, start)
    first_minute, last_minute = ceil_to(start, MINUTE), floor_to(end, MINUTE)
    if first_minute >= last_minute:  # no whole minute inside: all raw
        return Split(start, end, end, end, end, end)
    first_hour, last_hour = ceil_to(first_minute, HOUR), floor_to(last_minute, HOUR)
    if not hours or first_hour >= last_hour:  # no whole hour inside
        return Split(start, first_minute, last_minute, last_minute, last_minute, end)
    return Split(start, first_minute, first_hour, last_hour, last_minute, end)
