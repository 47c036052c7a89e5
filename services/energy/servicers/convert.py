"""protobuf <-> domain conversions shared by the servicers."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from banhammer.energy.v1 import alert_pb2, building_pb2, user_pb2

from ..models import Alert, AlertRule, Building, Reading, Series, Tenant, TenantInput, User

ROLE_TO_PB = {"user": user_pb2.ROLE_USER, "admin": user_pb2.ROLE_ADMIN}
PB_TO_ROLE = {user_pb2.ROLE_USER: "user", user_pb2.ROLE_ADMIN: "admin"}


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(dt.timezone.utc))
    return out


def ts_ns(ns: int) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(ns)
    return out


def present(message, name: str):
    """The sub-message ``name`` of ``message`` if set, else None (the domain validates it)."""
    return getattr(message, name) if message.HasField(name) else None


def time_range(message, name: str) -> tuple:
    """(start_time, end_time) of the TimeRange ``name``, each None when unset."""
    tr = present(message, name)
    return (None, None) if tr is None else (present(tr, "start_time"), present(tr, "end_time"))


def user(u: User) -> user_pb2.User:
    return user_pb2.User(user_id=u.user_id, username=u.username, email=u.email, role=ROLE_TO_PB[u.role],
                         create_time=ts(u.created_at))


def building(b: Building) -> building_pb2.Building:
    out = building_pb2.Building(building_id=b.building_id, name=b.name, address=b.address,
                                building_type=b.building_type, create_time=ts(b.created_at),
                                update_time=ts(b.updated_at))
    if b.total_area is not None:
        out.total_area = b.total_area
    if b.floors is not None:
        out.floors = b.floors
    return out


def building_in(pb: building_pb2.Building) -> Building:
    return Building(pb.building_id, pb.name, pb.address, pb.total_area if pb.HasField("total_area") else None,
                    pb.floors if pb.HasField("floors") else None, pb.building_type)


def tenant(t: Tenant) -> building_pb2.Tenant:
    return building_pb2.Tenant(
        tenant_id=t.tenant_id, building_id=t.building_id, name=t.name, contact_info=t.contact_info,
        move_in_date=t.move_in_date.isoformat() if t.move_in_date else "",
        contract_end_date=t.contract_end_date.isoformat() if t.contract_end_date else "",
        create_time=ts(t.created_at), update_time=ts(t.updated_at))


def tenant_in(pb: building_pb2.Tenant) -> TenantInput:
    return TenantInput(pb.tenant_id, pb.building_id, pb.name, pb.contact_info, pb.move_in_date, pb.contract_end_date)


def series_in(pbs) -> list[Series]:
    """Packed arrays come out as lists in one call each: no per-value protobuf access."""
    return [Series(pb.building_id, pb.sensor_type, pb.floor, pb.room, pb.unit, pb.status,
                   list(pb.values), list(pb.times_unix_nano)) for pb in pbs]


def readings_in(pbs) -> list[Reading]:
    """Hot path (thousands per batch): one comprehension, tuple.__new__ instead of the NamedTuple's
    Python-level constructor, plain arithmetic instead of ToNanoseconds(); an unset time reads as
    0 (= "now")."""
    new = tuple.__new__
    return [new(Reading, (pb.building_id, pb.sensor_type, pb.floor, pb.room, pb.value, pb.unit, pb.status,
                          (t := pb.time).seconds * 1_000_000_000 + t.nanos)) for pb in pbs]


def rule(r: AlertRule) -> alert_pb2.AlertRule:
    out = alert_pb2.AlertRule(rule_id=r.rule_id, name=r.name, severity=r.severity, enabled=r.enabled,
                              scope=alert_pb2.AlertScope(building_id=r.building_id, floor=r.floor, room=r.room),
                              create_time=ts(r.created_at))
    if r.kind == "threshold":
        out.threshold.sensor_type = r.sensor_type
        out.threshold.comparison = r.comparison
        out.threshold.threshold = r.threshold
        out.threshold.clear_threshold = r.clear_threshold
        out.threshold.min_duration.FromMilliseconds(r.min_duration_ms)
    else:
        out.forecast_drift.margin_percent = r.margin_percent
        out.forecast_drift.min_duration.FromMilliseconds(r.min_duration_ms)
    return out


def rule_in(pb: alert_pb2.AlertRule) -> AlertRule:
    kind = pb.WhichOneof("condition")
    base = dict(rule_id=0, name=pb.name, building_id=pb.scope.building_id, floor=pb.scope.floor, room=pb.scope.room,
                severity=pb.severity, enabled=pb.enabled)
    if kind == "threshold":
        c = pb.threshold
        return AlertRule(kind="threshold", sensor_type=c.sensor_type, comparison=c.comparison, threshold=c.threshold,
                         clear_threshold=c.clear_threshold, min_duration_ms=c.min_duration.ToMilliseconds(), **base)
    if kind == "forecast_drift":
        c = pb.forecast_drift
        ms = c.min_duration.ToMilliseconds() if c.HasField("min_duration") else 3_600_000
        return AlertRule(kind="forecast_drift", margin_percent=c.margin_percent, min_duration_ms=ms, **base)
    return AlertRule(kind="", **base)


def alert(a: Alert) -> alert_pb2.Alert:
    return alert_pb2.Alert(
        alert_id=a.alert_id, rule_id=a.rule_id,
        scope=alert_pb2.AlertScope(building_id=a.building_id, floor=a.floor, room=a.room),
        sensor_type=a.sensor_type, severity=a.severity, state=a.state, message=a.message,
        trigger_value=a.trigger_value, threshold=a.threshold, fired_at=ts(a.fired_at),
        acknowledged_at=ts(a.acknowledged_at), acknowledged_by=a.acknowledged_by,
        acknowledge_note=a.acknowledge_note, cleared_at=ts(a.cleared_at))
