"""Server time, UTC, at the database's precision (microseconds)."""

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_us(t: datetime) -> int:
    """Microseconds since the Unix epoch (exact: datetime and timestamptz both have µs)."""
    return (t - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def span_us(d: timedelta) -> int:
    return d // timedelta(microseconds=1)
