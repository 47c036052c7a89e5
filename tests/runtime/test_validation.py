import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.runtime import pagination
from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.validation import Violations


def test_nothing_collected_raises_nothing():
    v = Violations()
    v.text("name", "ok", 1, 8)
    assert v.page_size("page_size", 0, 10, 100) == 10
    v.raise_if_any()
    assert v.items == []


def test_every_violation_is_reported_at_once_in_order():
    v = Violations()
    v.add("a", "first")
    v.text("b", "", 1, 8)
    v.page_size("page_size", 101, 10, 100)
    with pytest.raises(InvalidArgument) as err:
        v.raise_if_any()
    assert [x.field for x in err.value.violations] == ["a", "b", "page_size"]
    assert err.value.message == "a: first (and 2 more)"


@pytest.mark.parametrize("value, lo, hi, unit, problem", [
    ("", 1, 4, "bytes", "must be 1..4 bytes (got 0)"),
    ("ééé", 1, 4, "bytes", "must be 1..4 bytes (got 6)"),
    ("ééé", 1, 4, "characters", None),
    ("abcde", 0, 4, "characters", "must be 0..4 characters (got 5)"),
    ("", 0, 4, "bytes", None),
])
def test_text_bounds(value, lo, hi, unit, problem):
    v = Violations()
    v.text("f", value, lo, hi, unit=unit)
    assert v.items == ([FieldViolation("f", problem)] if problem else [])


def test_text_pattern_is_checked_only_within_bounds():
    slug = re.compile(r"[a-z]+")
    v = Violations()
    v.text("a", "abc", 1, 8, slug)
    v.text("b", "ABC", 1, 8, slug, "lower-case letters")
    v.text("c", "A" * 9, 1, 8, slug)
    v.text("d", "1", 1, 8, slug)
    assert v.items == [FieldViolation("b", "must match lower-case letters"),
                       FieldViolation("c", "must be 1..8 bytes (got 9)"),
                       FieldViolation("d", "must match [a-z]+")]


def test_text_never_holds_nul_and_can_forbid_control_characters():
    v = Violations()
    v.text("a", "a\x00b", 0, 8)
    v.text("b", "a\x00" * 5, 0, 8)  # out of bounds: only the bounds are reported
    v.text("c", "a\nb\tc", 0, 8)
    v.text("d", "a\nb", 0, 8, forbid_control=True)
    v.text("e", "a\x7fb", 0, 8, forbid_control=True)
    v.text("f", "é😀 «»", 0, 16, forbid_control=True)
    v.text("g", "\x00", 0, 8, re.compile(r"[a-z]+"))
    assert v.items == [FieldViolation("a", "must not contain NUL characters"),
                       FieldViolation("b", "must be 0..8 bytes (got 10)"),
                       FieldViolation("d", "must not contain control characters"),
                       FieldViolation("e", "must not contain control characters"),
                       FieldViolation("g", "must not contain NUL characters")]


def test_integers_and_ids():
    v = Violations()
    assert v.integer("a", 5, 1, 10) and v.id("b", 2**63 - 1) and v.id("c", 0, optional=True)
    assert not v.integer("d", 11, 1, 10, "1..10 floors")
    assert not v.id("e", 0) and not v.id("f", -1, optional=True)
    assert v.items == [FieldViolation("d", "must be 1..10 floors"), FieldViolation("e", "must be > 0"),
                       FieldViolation("f", "must be >= 0")]


@pytest.mark.parametrize("seconds, nanos, expected", [
    (0, 0, datetime(1970, 1, 1, tzinfo=timezone.utc)),
    (-62135596800, 0, datetime(1, 1, 1, tzinfo=timezone.utc)),
    (253402300799, 999_999_999, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)),
    (253402300800, 0, None), (-62135596801, 0, None), (2**63 - 1, 0, None), (-(2**63), 0, None),
    (0, -1, None), (0, 1_000_000_000, None),
])
def test_timestamps_within_what_python_and_postgresql_hold(seconds, nanos, expected):
    v = Violations()
    assert v.timestamp("t", SimpleNamespace(seconds=seconds, nanos=nanos)) == expected
    assert [x.field for x in v.items] == ([] if expected else ["t"])


def test_timestamp_ns_defaults_to_the_int64_nanosecond_range():
    v = Violations()
    assert v.timestamp_ns("a", SimpleNamespace(seconds=1, nanos=5)) == 1_000_000_005
    assert v.timestamp_ns("b", SimpleNamespace(seconds=9_223_372_036, nanos=0)) == 9_223_372_036 * 10**9
    assert v.timestamp_ns("c", SimpleNamespace(seconds=9_223_372_036, nanos=999_999_999)) is None  # > 2**63 - 1
    assert v.timestamp_ns("d", SimpleNamespace(seconds=-10_000_000_000, nanos=0)) is None  # year 1653
    lo, hi = datetime(2020, 1, 1, tzinfo=timezone.utc), datetime(2021, 1, 1, tzinfo=timezone.utc)
    assert v.timestamp_ns("e", SimpleNamespace(seconds=1, nanos=0), lo, hi) is None
    assert [x.field for x in v.items] == ["c", "d", "e"]
    assert v.items[-1].description == "must be between 2020-01-01 and 2021-01-01"


@pytest.mark.parametrize("seconds, nanos, expected", [
    (60, 0, timedelta(minutes=1)), (3600, 500_000_000, timedelta(hours=1, milliseconds=500)),
    (86400, 0, timedelta(days=1)), (86400, 1, None),
    (59, 999_999_999, None), (2**63 - 1, 0, None), (-(2**63), 0, None), (-60, 0, None),
    (1, -1, None), (-1, 1, None), (0, 2_000_000_000, None),
])
def test_durations_are_checked_before_any_arithmetic(seconds, nanos, expected):
    v = Violations()
    got = v.duration("d", SimpleNamespace(seconds=seconds, nanos=nanos), timedelta(minutes=1), timedelta(hours=24))
    assert got == expected
    assert [x.field for x in v.items] == ([] if expected else ["d"])


def test_durations_are_described_in_whole_units():
    v = Violations()
    v.duration("d", SimpleNamespace(seconds=1, nanos=0), timedelta(minutes=1), timedelta(days=7))
    assert v.items == [FieldViolation("d", "must be between 1 min and 7 days")]


def test_page_size_falls_back_to_the_default_after_a_violation():
    v = Violations()
    assert v.page_size("page_size", -1, 10, 100) == 10
    assert v.page_size("page_size", 7, 10, 100) == 7
    assert v.items == [FieldViolation("page_size", "must be between 0 and 100 (0 means 10)")]


def test_page_token_is_collected_with_the_other_violations():
    token = pagination.encode("svc.ListThings", {"owner": "a"}, {"id": 3})
    v = Violations()
    assert v.page_token(token, "svc.ListThings", {"owner": "a"}) == {"id": 3}
    assert v.page_token("", "svc.ListThings", {}) is None
    assert v.items == []
    v.text("owner", "", 1, 8)
    assert v.page_token(token, "svc.ListThings", {"owner": "b"}) is None
    assert v.page_token("%%%", "svc.ListThings", {}, field="other_token") is None
    with pytest.raises(InvalidArgument) as err:
        v.raise_if_any()
    assert [x.field for x in err.value.violations] == ["owner", "page_token", "other_token"]
