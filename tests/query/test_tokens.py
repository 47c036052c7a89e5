"""Page tokens: opaque, URL-safe, bound to filters; forged cursor values are INVALID_ARGUMENT."""

from __future__ import annotations

import re

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2 as pb
from services.runtime import pagination as tokens
from services.query.clock import to_us
from services.runtime.errors import InvalidArgument

from .helpers import field_violations, stamp


def test_tokens_round_trip_and_are_url_safe():
    token = tokens.encode("violations", {"rule": "é/+?", "severities": [3, 4]}, {"t": 17, "i": 2**62})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token) and len(token) <= 1024
    assert tokens.decode(token, "violations", {"severities": [3, 4], "rule": "é/+?"}) == {"t": 17, "i": 2**62}
    assert tokens.decode("", "violations", {}) is None
    for kind, filters in (("violations", {"rule": "other", "severities": [3, 4]}), ("player_actions", {"rule": "é/+?", "severities": [3, 4]})):
        with pytest.raises(InvalidArgument) as err:
            tokens.decode(token, kind, filters)
        assert err.value.violations[0].field == "page_token"


HOUR_US = 3600 * 10**6
ANY_VIOLATION = {"player_id": "", "rule": "", "severities": [], "start": None, "end": None}


@pytest.mark.parametrize("cursor", [
    {"t": 10**30, "i": 1},  # beyond any timestamp
    {"t": 0, "i": 2**70},  # beyond bigint
    {"t": "yesterday", "i": 1},
    {"t": 0},
])
def test_forged_violation_cursors_are_rejected(query, cursor):
    token = tokens.encode("violations", ANY_VIOLATION, cursor)
    with pytest.raises(grpc.RpcError) as err:
        query.ListViolations(pb.ListViolationsRequest(page_token=token), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in field_violations(err.value)


@pytest.mark.parametrize("cursor", [
    {"t": 0, "n": 2**64, "p": "", "r": 1},  # count beyond bigint
    {"t": 2**61, "n": 1, "p": "", "r": 1},  # an instant in the future
    {"t": 0, "n": 1, "p": 7, "r": 1},
])
def test_forged_top_player_cursors_are_rejected(query, cursor):
    token = tokens.encode("top_players", {"window_us": HOUR_US, "action_type": ""}, cursor)
    with pytest.raises(grpc.RpcError) as err:
        query.GetTopPlayers(pb.GetTopPlayersRequest(page_token=token), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_forged_action_cursor_skip_is_bounded(query, db):
    start = db.dataset.now.replace(microsecond=0)
    filters = {"player_id": "p", "start": to_us(start), "end": None, "action_type": ""}
    token = tokens.encode("player_actions", filters, {"t": 0, "a": "", "v": 0, "e": "", "m": "0" * 32, "s": 2**40})
    request = pb.ListPlayerActionsRequest(player_id="p", page_token=token,
                                          time_range=common_pb2.TimeRange(start_time=stamp(start)))
    with pytest.raises(grpc.RpcError) as err:
        query.ListPlayerActions(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in field_violations(err.value)
