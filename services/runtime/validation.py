"""Request validation that reports every problem at once: collect field violations, then raise one
INVALID_ARGUMENT. Services add their own field kinds as functions taking a ``Violations``, or as a
subclass; the collecting and the kinds every service shares live here: text, integers and ids,
timestamps and durations within what the stores and Python can represent, paging.

Every check here is also a guard for the stores: a value that passes can be bound as a parameter of
PostgreSQL, Redis or InfluxDB without the driver or the server refusing it (which would otherwise
surface as INTERNAL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, TypeVar

from . import pagination
from .errors import FieldViolation, InvalidArgument

T = TypeVar("T")

INT64_MAX = 2**63 - 1
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The instants a google.protobuf.Timestamp may hold, which are also Python's and (a subset of)
#: PostgreSQL's: years 1..9999.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
#: The instants an int64 of nanoseconds since the epoch holds (InfluxDB's time range).
EARLIEST_NS = EPOCH + timedelta(microseconds=-(2**63) // 1000 + 1)
LATEST_NS = EPOCH + timedelta(microseconds=(2**63 - 1) // 1000)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Seconds(Protocol):
    """google.protobuf.Timestamp and Duration: seconds and nanos."""

    seconds: int
    nanos: int


def has_control(value: str) -> bool:
    """Whether ``value`` holds an ASCII control character (C0 or DEL): line breaks and escapes a
    log, a terminal, a line protocol or a query language would act on."""
    return _CONTROL.search(value) is not None


def human(d: timedelta) -> str:
    """``d`` as the largest whole unit that expresses it: "7 days", "24 h", "90 min", "30 s"."""
    if not d:
        return "0 s"
    for unit, name in ((timedelta(days=1), " days"), (timedelta(hours=1), " h"), (timedelta(minutes=1), " min")):
        if d % unit == timedelta(0):
            return f"{d // unit}{name}"
    return f"{d.total_seconds():g} s"


def _ns_of(d: timedelta) -> int:
    return d // timedelta(microseconds=1) * 1000


def _ns(t: datetime) -> int:
    return _ns_of(t - EPOCH)


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        """INVALID_ARGUMENT naming every violation collected so far, if there is any."""
        if self.items:
            raise InvalidArgument(self.items)

    def text(self, field: str, value: str, lo: int, hi: int, pattern: re.Pattern[str] | None = None,
             what: str = "", *, unit: Literal["bytes", "characters"] = "bytes", forbid_control: bool = False) -> None:
        """``value`` is ``lo``..``hi`` UTF-8 bytes (or characters) long, has no NUL (PostgreSQL text
        cannot hold one; no text of ours needs one), with ``forbid_control`` no other control character
        either (see ``has_control``), and, if given, matches ``pattern`` (described to the caller as
        ``what``, else the pattern itself)."""
        n = len(value.encode()) if unit == "bytes" else len(value)
        if not lo <= n <= hi:
            self.add(field, f"must be {lo}..{hi} {unit} (got {n})")
        elif forbid_control and has_control(value):
            self.add(field, "must not contain control characters")
        elif "\x00" in value:
            self.add(field, "must not contain NUL characters")
        elif pattern is not None and not pattern.fullmatch(value):
            self.add(field, f"must match {what or pattern.pattern}")

    def integer(self, field: str, value: int, lo: int, hi: int, what: str = "") -> bool:
        """``lo <= value <= hi`` (described as ``what``, else the bounds)."""
        if lo <= value <= hi:
            return True
        self.add(field, f"must be {what or f'{lo}..{hi}'}")
        return False

    def id(self, field: str, value: int, *, optional: bool = False) -> bool:
        """A positive row id (bigint); with ``optional``, 0 too (meaning "any" in a filter)."""
        return self.integer(field, value, 0 if optional else 1, INT64_MAX, ">= 0" if optional else "> 0")

    def timestamp(self, field: str, msg: Seconds, lo: datetime = EARLIEST, hi: datetime = LATEST) -> datetime | None:
        """The instant of a Timestamp (to the microsecond), if valid and within [lo, hi]."""
        ns = self._instant(field, msg, _ns(lo), _ns(hi) + 999, lo, hi)
        return None if ns is None else EPOCH + timedelta(microseconds=ns // 1000)

    def timestamp_ns(self, field: str, msg: Seconds, lo: datetime = EARLIEST_NS,
                     hi: datetime = LATEST_NS) -> int | None:
        """Nanoseconds since the epoch of a Timestamp, if valid, within [lo, hi] and an int64 (by
        default: the whole range of an int64 of nanoseconds)."""
        return self._instant(field, msg, max(_ns(lo), -(2**63)), min(_ns(hi) + 999, INT64_MAX), lo, hi)

    def _instant(self, field: str, msg: Seconds, lo_ns: int, hi_ns: int, lo: datetime, hi: datetime) -> int | None:
        if not 0 <= msg.nanos <= 999_999_999:
            self.add(field, "nanos must be 0..999,999,999")
            return None
        ns = msg.seconds * 1_000_000_000 + msg.nanos  # a Python int: a wild value cannot overflow
        if not lo_ns <= ns <= hi_ns:  # hi's last microsecond included
            self.add(field, f"must be between {lo:%Y-%m-%d} and {hi:%Y-%m-%d}")
            return None
        return ns

    def duration(self, field: str, msg: Seconds, lo: timedelta, hi: timedelta) -> timedelta | None:
        """The length of a Duration (to the microsecond), if valid and within [lo, hi]."""
        s, n = msg.seconds, msg.nanos
        if not -999_999_999 <= n <= 999_999_999 or s > 0 > n or s < 0 < n:
            self.add(field, "is not a valid duration (nanos within ±999,999,999, with the sign of seconds)")
            return None
        ns = s * 1_000_000_000 + n
        if not _ns_of(lo) <= ns <= _ns_of(hi):
            self.add(field, f"must be between {human(lo)} and {human(hi)}")
            return None
        return timedelta(microseconds=int(ns / 1000))

    def page_size(self, field: str, value: int, default: int, maximum: int) -> int:
        """The page size to use (see ``pagination.page_size``); ``default`` after a violation."""
        return self._collect(lambda: pagination.page_size(value, default, maximum, field), default)

    def page_token(self, token: str, kind: str, filters: Any, field: str = pagination.FIELD) -> dict[str, Any] | None:
        """The cursor of ``token`` (see ``pagination.decode``); ``None`` after a violation."""
        return self._collect(lambda: pagination.decode(token, kind, filters, field), None)

    def _collect(self, check: Callable[[], T], fallback: T) -> T:
        try:
            return check()
        except InvalidArgument as err:
            self.items.extend(err.violations)
            return fallback
