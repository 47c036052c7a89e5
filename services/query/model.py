"""Domain results of the query service (plain data; the servicer turns them into protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Accuracy:
    """How close a figure is to the exact count over raw rows."""

    exact: bool
    relative_error: float = 0.0  # not exact: within this fraction of the exact value...
    confidence: float = 1.0  # ...with this probability


EXACT = Accuracy(True)
#: HyperLogLog with 2^14 registers: standard error 1.04/128 = 0.81%; 2% is 2.46 standard errors.
HLL = Accuracy(False, relative_error=0.02, confidence=0.98)


@dataclass(frozen=True)
class WindowTotals:
    window: timedelta
    actions: int  # always exact
    players: int
    players_accuracy: Accuracy = EXACT


@dataclass(frozen=True)
class RuleCount:
    rule: str
    severity: int
    count: int


@dataclass(frozen=True)
class Overview:
    as_of: datetime
    last_minute: WindowTotals
    last_hour: WindowTotals
    last_day: WindowTotals
    by_rule: list[RuleCount]
    by_severity: dict[int, int]  # 1..4, zeros included
    banned_players: int
    total_players: int


@dataclass(frozen=True)
class TopPlayer:
    rank: int
    player_id: str
    action_count: int
    last_activity: datetime | None


@dataclass(frozen=True)
class Ranked:
    """Ranked (player_id, action_count, last_activity) rows with their completeness bound."""

    rows: list[tuple[str, int, datetime | None]]
    unlisted_max: int  # a player not considered has at most this many actions (0: none missing)
    exact_ranks: int  # leading ranks certainly exact (their counts exceed unlisted_max)


@dataclass(frozen=True)
class RankingAccuracy:
    exact_ranks: int
    unlisted_max: int

    @property
    def exact(self) -> bool:
        return self.unlisted_max == 0


@dataclass(frozen=True)
class TopPlayersPage:
    players: list[TopPlayer]
    window_start: datetime
    as_of: datetime
    next_page_token: str
    accuracy: RankingAccuracy = RankingAccuracy(0, 0)


@dataclass(frozen=True)
class HourLoad:
    hour_start: datetime
    actions: int
    players: int


@dataclass(frozen=True)
class HourlyLoad:
    hours: list[HourLoad]
    as_of: datetime
    players_accuracy: Accuracy = EXACT


@dataclass(frozen=True)
class Violation:
    id: int
    detected_at: datetime
    player_id: str
    rule: str
    severity: int
    evidence: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    ban_requested: bool


@dataclass(frozen=True)
class PlayerSummary:
    player_id: str
    total_actions: int
    total_violations: int
    risk_score: float  # 0..1 as stored; the API scales it to 0..100
    highest_severity: int  # 0 when none
    first_seen: datetime | None
    last_seen: datetime | None
    banned: bool


@dataclass(frozen=True)
class MinuteActivity:
    minute_start: datetime
    actions: int
    value_sum: float


@dataclass(frozen=True)
class PlayerView:
    summary: PlayerSummary
    recent_violations: list[Violation]
    activity: list[MinuteActivity]
    activity_start: datetime
    activity_end: datetime


@dataclass(frozen=True)
class Action:
    time: datetime
    action_type: str
    value: float
    metadata: dict[str, Any] | None
    event_id: str


@dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str


# --- storage --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableSize:
    name: str
    total_bytes: int
    table_bytes: int
    index_bytes: int
    row_estimate: int


@dataclass(frozen=True)
class HypertableStats:
    table: str
    chunk_count: int
    compressed_chunk_count: int
    before_compression_bytes: int
    after_compression_bytes: int


@dataclass(frozen=True)
class ChunkStats:
    table: str
    chunk: str
    range_start: datetime | None
    range_end: datetime | None
    compressed: bool
    before_compression_bytes: int
    after_compression_bytes: int


@dataclass(frozen=True)
class PolicyStatus:
    job_id: str
    kind: str  # "retention" | "compression" | "refresh" | "partition_maintenance"
    target: str
    schedule_interval: timedelta | None
    threshold: timedelta | None
    end_offset: timedelta | None
    enabled: bool
    last_run_time: datetime | None
    last_run_status: str  # "success" | "failed" | "running" | ""
    next_run_time: datetime | None
    total_failures: int


@dataclass(frozen=True)
class AggregateStatus:
    view: str
    bucket_width: timedelta
    materialized_through: datetime | None
    real_time: bool


@dataclass(frozen=True)
class StorageStats:
    timescaledb_version: str  # "" when the extension is absent
    backend: str  # "timescaledb" | "postgresql"
    tables: list[TableSize]
    hypertables: list[HypertableStats]
    chunks: list[ChunkStats]
    policies: list[PolicyStatus]
    aggregates: list[AggregateStatus]
    as_of: datetime
