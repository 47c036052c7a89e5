"""Protobuf requests → validated domain queries. Every problem is reported at once, as
INVALID_ARGUMENT field violations named by the request field path."""

from __future__ import annotations

from datetime import datetime, timedelta

from banhammer.query.v1 import query_pb2
from services.runtime.validation import Violations, human

from . import limits
from .clock import now
from .players import ActionsQuery, PlayerQuery
from .stats import TopPlayersQuery
from .violations import ViolationsQuery


class _Checker(Violations):
    """The shared collector plus the query service's optional windows and time ranges."""

    def window(self, field: str, msg, present: bool, default: timedelta, lo: timedelta, hi: timedelta) -> timedelta:
        """A Duration within [lo, hi], ``default`` when unset (or after a violation)."""
        if not present:
            return default
        value = self.duration(field, msg, lo, hi)
        return default if value is None else value

    def time_range(self, field: str, msg, max_span: timedelta) -> tuple[datetime | None, datetime | None]:
        """(start, end or None for now) of a TimeRange whose start is required."""
        if not msg.HasField("start_time"):
            self.add(f"{field}.start_time", "required")
            return None, None
        start = self.timestamp(f"{field}.start_time", msg.start_time)
        end = self.timestamp(f"{field}.end_time", msg.end_time) if msg.HasField("end_time") else None
        if start is None or (msg.HasField("end_time") and end is None):
            return None, None
        upper = end or now()
        if upper <= start:
            self.add(f"{field}.end_time" if end else f"{field}.start_time",
                     "must be after start_time" if end else "must be in the past")
        elif upper - start > max_span:
            self.add(field, f"spans more than {human(max_span)}")
        return start, end


def top_players(r: query_pb2.GetTopPlayersRequest) -> TopPlayersQuery:
    c = _Checker()
    window = c.window("window", r.window, r.HasField("window"), limits.TOP_WINDOW_DEFAULT,
                        limits.TOP_WINDOW_MIN, limits.TOP_WINDOW_MAX)
    c.text("action_type", r.action_type, 0, limits.ACTION_TYPE_MAX_BYTES)
    size = c.page_size("page_size", r.page_size, limits.TOP_PAGE_DEFAULT, limits.TOP_PAGE_MAX)
    c.raise_if_any()
    return TopPlayersQuery(window, r.action_type, size, r.page_token)


def hourly_hours(r: query_pb2.GetHourlyLoadRequest) -> int:
    c = _Checker()
    hours = c.page_size("hours", r.hours, limits.HOURS_DEFAULT, limits.HOURS_MAX)
    c.raise_if_any()
    return hours


def player(r: query_pb2.GetPlayerRequest) -> PlayerQuery:
    c = _Checker()
    c.text("player_id", r.player_id, 1, limits.PLAYER_ID_MAX_BYTES)
    window = c.window("activity_window", r.activity_window, r.HasField("activity_window"),
                        limits.ACTIVITY_WINDOW_DEFAULT, limits.ACTIVITY_WINDOW_MIN, limits.ACTIVITY_WINDOW_MAX)
    count = c.page_size("recent_violations_limit", r.recent_violations_limit, limits.RECENT_VIOLATIONS_DEFAULT,
                        limits.RECENT_VIOLATIONS_MAX)
    c.raise_if_any()
    return PlayerQuery(r.player_id, window, count)


def player_actions(r: query_pb2.ListPlayerActionsRequest) -> ActionsQuery:
    c = _Checker()
    c.text("player_id", r.player_id, 1, limits.PLAYER_ID_MAX_BYTES)
    if r.HasField("time_range"):
        start, end = c.time_range("time_range", r.time_range, limits.ACTIONS_SPAN_MAX)
    else:
        c.add("time_range.start_time", "required")
        start = end = None
    c.text("action_type", r.action_type, 0, limits.ACTION_TYPE_MAX_BYTES)
    size = c.page_size("page_size", r.page_size, limits.ACTIONS_PAGE_DEFAULT, limits.ACTIONS_PAGE_MAX)
    c.raise_if_any()
    return ActionsQuery(r.player_id, start, end, r.action_type, size, r.page_token)


def violations(r: query_pb2.ListViolationsRequest) -> ViolationsQuery:
    c = _Checker()
    c.text("player_id", r.player_id, 0, limits.PLAYER_ID_MAX_BYTES)
    c.text("rule", r.rule, 0, limits.RULE_MAX_BYTES)
    if len(r.severities) > limits.SEVERITIES_MAX:
        c.add("severities", f"at most {limits.SEVERITIES_MAX} entries")
    for i, sev in enumerate(r.severities):
        if not 0 <= sev <= 4:
            c.add(f"severities[{i}]", "unknown severity")
    # SEVERITY_UNSPECIFIED in a filter means "any severity".
    severities = () if 0 in r.severities else tuple(sorted(set(r.severities)))
    start = end = None
    if r.HasField("time_range"):
        start, end = c.time_range("time_range", r.time_range, limits.VIOLATIONS_SPAN_MAX)
    size = c.page_size("page_size", r.page_size, limits.VIOLATIONS_PAGE_DEFAULT, limits.VIOLATIONS_PAGE_MAX)
    c.raise_if_any()
    return ViolationsQuery(r.player_id, r.rule, severities, start, end, size, r.page_token)
