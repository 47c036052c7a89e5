"""The window split: pieces tile [start, end) exactly, each source at its own granularity."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.query.windows import HOUR, MINUTE, ceil_to, floor_to, split

BASE = datetime(2025, 3, 1, tzinfo=timezone.utc)
offsets = st.integers(min_value=0, max_value=3 * 86400 * 10**6).map(lambda us: BASE + timedelta(microseconds=us))


def _source_of(t: datetime, s) -> str | None:
    """Which piece answers for an action at time t (rollup rows are found by their bucket)."""
    m, h = floor_to(t, MINUTE), floor_to(t, HOUR)
    hits = []
    if s.b0 <= t < s.b1 or s.b4 <= t < s.b5:
        hits.append("raw")
    if s.b1 <= m < s.b2 or s.b3 <= m < s.b4:
        hits.append("1min")
    if s.b2 <= h < s.b3:
        hits.append("1h")
    assert len(hits) <= 1, (t, hits)
    return hits[0] if hits else None


@settings(max_examples=300, deadline=None)
@given(offsets, offsets, st.lists(st.integers(min_value=-3 * 86400 * 10**6, max_value=3 * 86400 * 10**6), max_size=40),
       st.booleans())
def test_every_instant_is_counted_once_exactly_inside_the_window(a, b, probes, hours):
    start, end = min(a, b), max(a, b)
    s = split(start, end, hours=hours)
    assert s.b0 == start and s.b5 == end
    assert s.b0 <= s.b1 <= s.b2 <= s.b3 <= s.b4 <= s.b5
    if s.b1 < s.b4:  # rollup pieces start and end on their buckets
        assert floor_to(s.b1, MINUTE) == s.b1 and floor_to(s.b4, MINUTE) == s.b4
    if s.b2 < s.b3:
        assert hours and floor_to(s.b2, HOUR) == s.b2 and floor_to(s.b3, HOUR) == s.b3
    assert s.raw_span < 2 * MINUTE
    edges = [start, end, start - timedelta(microseconds=1), end - timedelta(microseconds=1),
             ceil_to(start, MINUTE), floor_to(end, MINUTE), ceil_to(start, HOUR), floor_to(end, HOUR)]
    for t in edges + [start + timedelta(microseconds=p) for p in probes]:
        assert (_source_of(t, s) is not None) == (start <= t < end), t


def test_an_hour_or_more_reads_at_most_two_minutes_of_raw_rows():
    start = datetime(2025, 3, 1, 10, 17, 31, 250000, tzinfo=timezone.utc)
    s = split(start, start + timedelta(hours=26))
    assert (s.b1, s.b2) == (start.replace(second=0, microsecond=0) + MINUTE, datetime(2025, 3, 1, 11, tzinfo=timezone.utc))
    assert s.b3 - s.b2 == timedelta(hours=25)
    assert s.raw_span == timedelta(seconds=60)  # 28.75 s at the start + 31.25 s at the end
