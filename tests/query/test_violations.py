"""ListViolations: every filter combination paged through equals one raw query."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2 as pb

from .helpers import field_violations, stamp, when

HIGH, CRITICAL = common_pb2.SEVERITY_HIGH, common_pb2.SEVERITY_CRITICAL


def _page_all(query, request, max_pages: int = 1000) -> list:
    out, token = [], ""
    for _ in range(max_pages):  # a cursor that does not advance fails instead of looping
        request.page_token = token
        r = query.ListViolations(request, timeout=10)
        out.extend(r.violations)
        token = r.next_page_token
        if not token:
            return out
    raise AssertionError(f"still paging after {max_pages} pages")


@pytest.mark.parametrize("player,rule,severities,hours,page_size", [
    ("", "", [], None, 13),
    ("player_000", "", [], None, 13),
    ("", "reward_rate", [], None, 13),
    ("", "", [HIGH, CRITICAL], None, 13),
    ("", "", [], 24, 13),
    ("player_001", "impossible_value", [CRITICAL], 48, 1),
    ("", "", [common_pb2.SEVERITY_UNSPECIFIED, HIGH], None, 13),  # UNSPECIFIED: any severity
])
def test_violation_pages_equal_one_raw_query(query, db, player, rule, severities, hours, page_size):
    now = db.dataset.now
    request = pb.ListViolationsRequest(player_id=player, rule=rule, severities=severities, page_size=page_size)
    start = end = None
    if hours:
        start, end = now - timedelta(hours=hours), now
        request.time_range.CopyFrom(common_pb2.TimeRange(start_time=stamp(start), end_time=stamp(end)))
    got = _page_all(query, request)
    any_severity = not severities or 0 in severities
    expected = db.rows(
        "SELECT id, detected_at FROM violations_ts WHERE (%(p)s = '' OR player_id = %(p)s)"
        " AND (%(r)s = '' OR rule = %(r)s) AND (%(any)s OR severity = ANY(%(s)s))"
        " AND (%(start)s::timestamptz IS NULL OR (detected_at >= %(start)s AND detected_at < %(end)s))"
        " ORDER BY detected_at DESC, id DESC",
        {"p": player, "r": rule, "any": any_severity, "s": list(severities), "start": start, "end": end})
    assert len(expected) > page_size, "each case spans several pages"
    assert [(int(v.violation_id), when(v.detected_at)) for v in got] == expected


def test_violation_defaults_to_100_per_page(query):
    r = query.ListViolations(pb.ListViolationsRequest(), timeout=10)
    assert len(r.violations) == 100 and r.next_page_token


def test_violation_token_with_other_filters_is_rejected(query):
    token = query.ListViolations(pb.ListViolationsRequest(rule="reward_rate", page_size=1), timeout=10).next_page_token
    with pytest.raises(grpc.RpcError) as err:
        query.ListViolations(pb.ListViolationsRequest(rule="trade_burst", page_token=token), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "different filters" in field_violations(err.value)["page_token"]
    for garbage in ("not-a-token", "e30", "x" * 2000):
        with pytest.raises(grpc.RpcError) as err:
            query.ListViolations(pb.ListViolationsRequest(page_token=garbage), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in field_violations(err.value)
