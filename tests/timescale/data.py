"""Deterministic rows for the TimescaleDB tests, and their expected aggregates computed in Python
(independently of PostgreSQL)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .pglite import step

ACTIONS = ("kill", "move", "chat")


@dataclass(frozen=True)
class Action:
    time: datetime
    player_id: str
    action_type: str
    value: float
    event_id: str

    def as_json(self) -> dict:
        return {"time": self.time.isoformat(), "player_id": self.player_id, "action_type": self.action_type,
                "value": self.value, "metadata": {"i": self.event_id}, "event_id": self.event_id}


def actions(prefix: str, start: datetime, count: int, every: timedelta, players: int = 5) -> list[Action]:
    """``count`` actions from ``start``, one every ``every`` (plus a few ms so buckets are not all
    aligned), cycling players/action types; values are halves (exact in float sums)."""
    out = []
    for i in range(count):
        out.append(Action(time=start + i * every + timedelta(milliseconds=(i * 7) % 1000),
                          player_id=f"{prefix}{i % players}", action_type=ACTIONS[i % len(ACTIONS)],
                          value=((i * 13) % 17) + 0.5, event_id=f"{prefix}e{i}"))
    return out


def insert_actions(rows: list[Action]) -> dict:
    """One step inserting ``rows`` into player_actions_ts (jsonb_to_recordset: one round trip)."""
    return step("""
        INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id)
        SELECT time, player_id, action_type, value, metadata, event_id
        FROM jsonb_to_recordset($1::jsonb)
             AS r(time timestamptz, player_id text, action_type text, value float8, metadata jsonb, event_id text)
        """, json.dumps([r.as_json() for r in rows]))


def floor(t: datetime, step_: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return t - (t - epoch) % step_


def expected_buckets(rows: list[Action], width: timedelta) -> dict[tuple, tuple[int, float, float]]:
    """(bucket, player, action type) -> (actions, value_sum, value_max), as the rollups define it."""
    acc: dict[tuple, list] = defaultdict(lambda: [0, 0.0, float("-inf")])
    for r in rows:
        a = acc[(floor(r.time, width), r.player_id, r.action_type)]
        a[0] += 1
        a[1] += r.value
        a[2] = max(a[2], r.value)
    return {k: (v[0], v[1], v[2]) for k, v in acc.items()}
