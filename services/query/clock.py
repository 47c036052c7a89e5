"""Server time, UTC, at the database's precision (microseconds)."""

from datetime import datetime, timedelta, timezone
from typing import Any

from services.runtime import pagination

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


def instant(value: Any) -> datetime:
    """A page-token cursor time (microseconds since the epoch); a forged one is INVALID_ARGUMENT."""
    try:
        return from_us(pagination.integer(value, -(2**62), 2**62))
    except OverflowError:
        raise pagination.invalid() from None
