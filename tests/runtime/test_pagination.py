import base64
import json

import pytest

from services.runtime import pagination
from services.runtime.errors import FieldViolation, InvalidArgument


def _violation(call) -> FieldViolation:
    with pytest.raises(InvalidArgument) as err:
        call()
    assert len(err.value.violations) == 1
    return err.value.violations[0]


def test_round_trip_is_opaque_and_url_safe():
    cursor = {"id": 41, "name": "ä/+?"}
    token = pagination.encode("svc.ListThings", {"owner": "ü", "n": [1, 2]}, cursor)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert pagination.decode(token, "svc.ListThings", {"n": [1, 2], "owner": "ü"}) == cursor  # key order is free


def test_empty_token_is_the_first_page():
    assert pagination.decode("", "svc.ListThings", {}) is None


@pytest.mark.parametrize("kind, filters", [("svc.ListOther", {"owner": "a"}), ("svc.ListThings", {"owner": "b"}),
                                           ("svc.ListThings", {})])
def test_token_is_bound_to_its_list_and_filters(kind, filters):
    token = pagination.encode("svc.ListThings", {"owner": "a"}, {"id": 1})
    v = _violation(lambda: pagination.decode(token, kind, filters))
    assert v.field == "page_token" and "different filters" in v.description


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24"] + [base64.urlsafe_b64encode(raw).decode() for raw in (
    b'{"c":{}}', b'{"f":"x","c":[1]}', b"[1,2]", b"\xff")])
def test_malformed_tokens_are_invalid_argument(token):
    v = _violation(lambda: pagination.decode(token, "svc.ListThings", {}))
    assert v == FieldViolation("page_token", pagination.FOREIGN)


def test_the_field_name_is_the_callers():
    v = _violation(lambda: pagination.decode("%%%", "svc.ListThings", {}, field="history.page_token"))
    assert v.field == "history.page_token"


def test_oversized_tokens_are_refused_both_ways():
    v = _violation(lambda: pagination.decode("A" * (pagination.MAX_TOKEN_BYTES + 1), "svc.ListThings", {}))
    assert v.field == "page_token" and str(pagination.MAX_TOKEN_BYTES) in v.description
    with pytest.raises(ValueError):
        pagination.encode("svc.ListThings", {}, {"k": "x" * pagination.MAX_TOKEN_BYTES})


def test_a_token_from_the_old_codecs_is_refused():
    old = base64.urlsafe_b64encode(json.dumps({"after": "r", "all": False}).encode()).decode().rstrip("=")
    _violation(lambda: pagination.decode(old, "ingest.ListRules", {"include_disabled": False}))


def test_cursor_readers_check_forged_values():
    assert pagination.integer(7) == 7
    assert pagination.integer(-3, lo=-5, hi=5) == -3
    for bad in (True, "7", 7.0, None, -1, 2**63):
        assert _violation(lambda: pagination.integer(bad)).field == "page_token"
    assert pagination.text("m") == "m"
    assert _violation(lambda: pagination.text(3, field="x.page_token")).field == "x.page_token"
    assert pagination.invalid().violations == [FieldViolation("page_token", pagination.FOREIGN)]


@pytest.mark.parametrize("value, expected", [(0, 50), (1, 1), (500, 500)])
def test_page_size_defaults_and_bounds(value, expected):
    assert pagination.page_size(value, 50, 500) == expected


@pytest.mark.parametrize("value", [-1, 501])
def test_page_size_out_of_range_is_a_field_violation(value):
    v = _violation(lambda: pagination.page_size(value, 50, 500, field="hours"))
    assert v == FieldViolation("hours", "must be between 0 and 500 (0 means 50)")


async def test_id_page_walks_a_list_without_gaps_or_repeats():
    rows = list(range(1, 24))

    async def fetch(after: int, limit: int) -> list[int]:
        return [r for r in rows if r > after][:limit]

    seen, token = [], ""
    while True:
        items, token = await pagination.id_page("t.List", {"f": 1}, token, 5, fetch, lambda r: r)
        seen += items
        if not token:
            break
    assert seen == rows
    with pytest.raises(InvalidArgument):  # bound to its filters
        await pagination.id_page("t.List", {"f": 2}, pagination.encode("t.List", {"f": 1}, {"id": 5}), 5, fetch,
                                 lambda r: r)
