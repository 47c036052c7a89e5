import re

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


def test_text_can_forbid_nul_characters():
    v = Violations()
    v.text("a", "a\x00b", 0, 8)
    v.text("b", "a\x00b", 0, 8, forbid_nul=True)
    v.text("c", "a\x00" * 5, 0, 8, forbid_nul=True)  # out of bounds: only the bounds are reported
    v.text("d", "ab", 0, 8, re.compile(r"[a-z]+"), forbid_nul=True)
    v.text("e", "\x00", 0, 8, re.compile(r"[a-z]+"), forbid_nul=True)
    assert v.items == [FieldViolation("b", "must not contain NUL characters"),
                       FieldViolation("c", "must be 0..8 bytes (got 10)"),
                       FieldViolation("e", "must not contain NUL characters")]


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
