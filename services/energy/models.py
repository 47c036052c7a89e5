"""Domain records shared by the store and domain layers (no protobuf, no SQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    email: str
    role: str  # "user" | "admin"
    created_at: dt.datetime


@dataclass(frozen=True)
class Building:
    building_id: int
    name: str
    address: str
    total_area: float | None
    floors: int | None
    building_type: str
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Tenant:
    tenant_id: int
    building_id: int
    name: str
    contact_info: str
    move_in_date: dt.date | None
    contract_end_date: dt.date | None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class TenantInput:
    """A tenant as a caller sends it: its dates still text ("YYYY-MM-DD", "" for none), checked by
    the domain."""

    tenant_id: int
    building_id: int
    name: str
    contact_info: str
    move_in_date: str
    contract_end_date: str


class Reading(NamedTuple):
    """One sensor reading; a tuple because write batches build thousands of them (hot path)."""

    building_id: int
    sensor_type: str
    floor: str
    room: str
    value: float
    unit: str
    status: str
    time_ns: int


class Series(NamedTuple):
    """Readings of one series, columnar (SeriesReadings): tags once, values with their times."""

    building_id: int
    sensor_type: str
    floor: str
    room: str
    unit: str
    status: str
    values: list[float]
    times: list[int]  # ns; empty: every value at receive time


@dataclass(frozen=True)
class AlertRule:
    rule_id: int
    name: str
    building_id: int
    floor: str
    room: str
    severity: int
    kind: str  # "threshold" | "forecast_drift"
    sensor_type: str = ""
    comparison: int = 0  # 1 above, 2 below
    threshold: float = 0.0
    clear_threshold: float = 0.0
    margin_percent: float = 0.0
    min_duration_ms: int = 0
    enabled: bool = True
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class Alert:
    alert_id: int
    rule_id: int
    building_id: int
    floor: str
    room: str
    sensor_type: str
    severity: int
    state: int  # 1 firing, 2 acknowledged, 3 cleared
    message: str
    trigger_value: float
    threshold: float
    fired_at: dt.datetime
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str = ""
    acknowledge_note: str = ""
    cleared_at: dt.datetime | None = None


FIRING, ACKNOWLEDGED, CLEARED = 1, 2, 3
ABOVE, BELOW = 1, 2


@dataclass
class Page:
    items: list = field(default_factory=list)
    next_token: str = ""
