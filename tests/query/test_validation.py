"""Invalid ranges, oversized windows and page sizes: INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2 as pb

from .helpers import duration, field_violations, stamp

NOW = datetime.now(timezone.utc)


def _range(start: timedelta | None, end: timedelta | None = None) -> common_pb2.TimeRange:
    r = common_pb2.TimeRange()
    if start is not None:
        r.start_time.CopyFrom(stamp(NOW - start))
    if end is not None:
        r.end_time.CopyFrom(stamp(NOW - end))
    return r


CASES = [
    ("GetTopPlayers", pb.GetTopPlayersRequest(window=duration(timedelta(seconds=59))), {"window"}),
    ("GetTopPlayers", pb.GetTopPlayersRequest(window=duration(timedelta(days=7, seconds=1))), {"window"}),
    ("GetTopPlayers", pb.GetTopPlayersRequest(page_size=1001), {"page_size"}),
    ("GetTopPlayers", pb.GetTopPlayersRequest(page_size=-1, action_type="x" * 65), {"page_size", "action_type"}),
    ("GetHourlyLoad", pb.GetHourlyLoadRequest(hours=721), {"hours"}),
    ("GetHourlyLoad", pb.GetHourlyLoadRequest(hours=-3), {"hours"}),
    ("GetPlayer", pb.GetPlayerRequest(), {"player_id"}),
    ("GetPlayer", pb.GetPlayerRequest(player_id="é" * 65), {"player_id"}),  # 130 bytes
    ("GetPlayer", pb.GetPlayerRequest(player_id="a\x00b"), {"player_id"}),
    ("GetPlayer", pb.GetPlayerRequest(player_id="p", activity_window=duration(timedelta(hours=24, seconds=1)),
                                      recent_violations_limit=101), {"activity_window", "recent_violations_limit"}),
    ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id="p"), {"time_range.start_time"}),
    ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id="p", time_range=_range(timedelta(hours=1), timedelta(hours=2))),
     {"time_range.end_time"}),
    ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id="p", time_range=_range(timedelta(days=-1))),
     {"time_range.start_time"}),  # open end (now) before a future start
    ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id="p", time_range=_range(timedelta(days=32))), {"time_range"}),
    ("ListPlayerActions", pb.ListPlayerActionsRequest(time_range=_range(timedelta(days=1)), page_size=1001),
     {"player_id", "page_size"}),
    ("ListViolations", pb.ListViolationsRequest(severities=[1, 2, 3, 4, 1]), {"severities"}),
    ("ListViolations", pb.ListViolationsRequest(severities=[2, 9]), {"severities[1]"}),
    ("ListViolations", pb.ListViolationsRequest(time_range=_range(timedelta(days=91), timedelta(0))), {"time_range"}),
    ("ListViolations", pb.ListViolationsRequest(time_range=_range(None, timedelta(0))), {"time_range.start_time"}),
    ("ListViolations", pb.ListViolationsRequest(rule="r" * 65, player_id="p" * 129, page_size=1001),
     {"rule", "player_id", "page_size"}),
]


@pytest.mark.parametrize("method,request_,fields", CASES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_invalid_requests_name_every_bad_field(query, method, request_, fields):
    with pytest.raises(grpc.RpcError) as err:
        getattr(query, method)(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) == fields


@pytest.mark.parametrize("method,request_", [
    ("GetTopPlayers", pb.GetTopPlayersRequest(window=duration(timedelta(minutes=1)), page_size=1000)),
    ("GetTopPlayers", pb.GetTopPlayersRequest(window=duration(timedelta(days=7)))),
    ("GetHourlyLoad", pb.GetHourlyLoadRequest(hours=720)),
    ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id="p" * 128, time_range=_range(timedelta(days=31), timedelta(0)))),
    ("ListViolations", pb.ListViolationsRequest(severities=[1, 2, 3, 4], page_size=1000,
                                                time_range=_range(timedelta(days=90), timedelta(0)))),
])
def test_limits_themselves_are_accepted(query, method, request_):
    getattr(query, method)(request_, timeout=20)
