"""Independent raw-SQL expectations and small gRPC helpers for the query tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def when(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def stamp(t: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


def duration(d: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(d)
    return out


def field_violations(exc: grpc.RpcError) -> dict[str, str]:
    """field -> description from the google.rpc.BadRequest detail of an error."""
    status = rpc_status.from_call(exc)
    out = {}
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def struct_json(msg) -> str | None:
    return json.dumps(MessageToDict(msg), sort_keys=True) if msg.ListFields() else None


def jsonb_json(value) -> str | None:
    """psycopg returns jsonb as Python values; Struct numbers are doubles."""
    if value is None:
        return None
    def floats(v):
        if isinstance(v, dict):
            return {k: floats(x) for k, x in v.items()}
        if isinstance(v, list):
            return [floats(x) for x in v]
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    return json.dumps(floats(value), sort_keys=True)


# --- raw SQL over player_actions_ts (the seed's queries, not the service's) --------------------
def raw_window(db, start: datetime, end: datetime) -> tuple[int, int]:
    (row,) = db.rows("SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts"
                     " WHERE time >= %s AND time < %s", (start, end))
    return row


def raw_top(db, start: datetime, end: datetime, action_type: str = "") -> list[tuple[str, int, datetime]]:
    """The seed's "most active players" with the proto's tie-break and exact last activity."""
    return db.rows(
        "SELECT player_id, count(*) AS action_count, max(time) AS last_activity FROM player_actions_ts"
        " WHERE time >= %s AND time < %s AND (%s = '' OR action_type = %s)"
        ' GROUP BY player_id ORDER BY action_count DESC, player_id COLLATE "C"',
        (start, end, action_type, action_type))


def raw_hourly(db, start: datetime, end: datetime) -> dict[datetime, tuple[int, int]]:
    """The seed's load analysis (the session's TimeZone is UTC)."""
    rows = db.rows("SELECT date_trunc('hour', time) AS hour, count(*), count(DISTINCT player_id)"
                   " FROM player_actions_ts WHERE time >= %s AND time < %s GROUP BY hour ORDER BY hour",
                   (start, end))
    return {h: (n, p) for h, n, p in rows}
