"""One valid request per RPC, the starting point of its hostile cases (JSON form of the message).

Every RPC in the contracts must have one here (the test fails for a new RPC without it), so each
hostile value travels as far into the service as a valid request would. Ids come from the
``World`` the test creates first; deleting RPCs get their own doomed targets.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    """What exists before the cases run."""

    building_id: int
    doomed_building_id: int
    tenant_id: int
    doomed_tenant_id: int
    doomed_rule_id: int
    user_id: int
    username: str
    password: str
    session_token: str
    doomed_session_id: str


PLAYER = "hostile-p1"
VICTIM = "hostile-victim"


def _rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def baselines(w: World) -> dict[str, dict]:
    now = dt.datetime.now(dt.timezone.utc)
    recent = {"start_time": _rfc3339(now - dt.timedelta(hours=1)), "end_time": _rfc3339(now)}
    ns = time.time_ns()
    action = {"player_id": PLAYER, "action_type": "login", "value": 1.0, "metadata": {"map": "dust"},
              "time": _rfc3339(now - dt.timedelta(minutes=1))}
    reading = {"building_id": str(w.building_id), "sensor_type": "power", "floor": "1", "room": "101", "value": 1.5,
               "unit": "kW", "status": "ok", "time": _rfc3339(now - dt.timedelta(minutes=1))}
    series = {"building_id": str(w.building_id), "sensor_type": "temperature", "floor": "1", "room": "101",
              "unit": "C", "status": "ok", "values": [20.5, 21.0],
              "times_unix_nano": [str(ns - 2 * 10**9), str(ns - 10**9)]}
    sensor_filter = {"building_ids": [str(w.building_id)], "sensor_types": ["power"], "floors": ["1"],
                     "rooms": ["101"]}
    building = {"name": "Hostile HQ", "address": "1 Test Street", "total_area": 100.5, "floors": 3,
                "building_type": "office"}
    tenant = {"building_id": str(w.building_id), "name": "Acme", "contact_info": "ops@acme.test",
              "move_in_date": "2024-01-01", "contract_end_date": "2030-01-01"}
    yesterday = (now - dt.timedelta(days=1)).date()
    b = str(w.building_id)
    _rule = {"name": "hostile_rule", "description": "rate", "enabled": True, "severity": "SEVERITY_HIGH",
             "action_type": "login", "rate": {"window": "60s", "max_count": "100"}, "ban": {"duration": "3600s"},
             "cooldown": "120s"}
    return {
        # ingest
        "/banhammer.ingest.v1.IngestService/RecordAction": {"action": action},
        "/banhammer.ingest.v1.IngestService/RecordActions": {"actions": [action]},
        "/banhammer.ingest.v1.IngestService/StreamActions": {"sequence": "1", "actions": [action]},
        "/banhammer.ingest.v1.IngestService/ListRules": {"page_size": 10, "include_disabled": True},
        "/banhammer.ingest.v1.IngestService/GetRule": {"name": "reward_rate"},
        "/banhammer.ingest.v1.RuleService/CreateRule": {"rule": _rule},
        "/banhammer.ingest.v1.RuleService/UpdateRule": {"rule": _rule, "expected_revision": "0"},
        "/banhammer.ingest.v1.RuleService/DryRunRule": {"rule": _rule, "lookback": "600s", "max_players": 10},
        "/banhammer.ingest.v1.RuleService/ListRuleChanges": {"name": "reward_rate", "page_size": 10},
        # query
        "/banhammer.query.v1.QueryService/GetStatsOverview": {},
        "/banhammer.query.v1.QueryService/GetTopPlayers": {"window": "3600s", "action_type": "login", "page_size": 10},
        "/banhammer.query.v1.QueryService/GetHourlyLoad": {"hours": 24},
        "/banhammer.query.v1.QueryService/GetPlayer": {"player_id": PLAYER, "activity_window": "3600s",
                                                        "recent_violations_limit": 10},
        "/banhammer.query.v1.QueryService/ListPlayerActions": {"player_id": PLAYER, "time_range": recent,
                                                                "action_type": "login", "page_size": 10},
        "/banhammer.query.v1.QueryService/ListViolations": {"player_id": PLAYER, "rule": "reward_rate",
                                                             "severities": ["SEVERITY_HIGH"], "time_range": recent,
                                                             "page_size": 10},
        "/banhammer.query.v1.QueryService/GetStorageStats": {},
        # session
        "/banhammer.session.v1.SessionService/CreateSession": {"subject": "hostile-created", "role": "user",
                                                               "attributes": {"k": "v"}, "ttl": "3600s"},
        "/banhammer.session.v1.SessionService/ValidateSession": {"token": w.session_token},
        "/banhammer.session.v1.SessionService/RefreshSession": {"token": w.session_token, "ttl": "3600s"},
        "/banhammer.session.v1.SessionService/RevokeSession": {"session_id": w.doomed_session_id, "reason": "test"},
        "/banhammer.session.v1.SessionService/RevokeSubjectSessions": {"subject": "hostile-nobody", "reason": "test"},
        "/banhammer.session.v1.SessionService/ListSessions": {"subject": "hostile-created", "page_size": 10},
        "/banhammer.session.v1.BanService/Ban": {"subject": VICTIM, "reason": "test", "admin_source": {"admin": "ops"},
                                                 "duration": "3600s"},
        "/banhammer.session.v1.BanService/Unban": {"subject": VICTIM, "unbanned_by": "ops", "reason": "test"},
        "/banhammer.session.v1.BanService/IsBanned": {"subject": VICTIM},
        "/banhammer.session.v1.BanService/CheckBans": {"subjects": [VICTIM, PLAYER]},
        "/banhammer.session.v1.BanService/ListBans": {"page_size": 10},
        "/banhammer.session.v1.BanService/GetBanHistory": {"subject": VICTIM, "page_size": 10},
        "/banhammer.session.v1.CacheService/Get": {"namespace": "hostile", "key": "k"},
        "/banhammer.session.v1.CacheService/Set": {"namespace": "hostile", "key": "k",
                                                   "value": base64.b64encode(b"v").decode(), "ttl": "3600s"},
        "/banhammer.session.v1.CacheService/Delete": {"namespace": "hostile", "key": "k"},
        "/banhammer.session.v1.CacheService/GetOrLease": {"namespace": "hostile", "key": "lease", "lease_ttl": "300s"},
        "/banhammer.session.v1.CacheService/ReleaseLease": {"namespace": "hostile", "key": "lease",
                                                            "lease_token": "no-such-lease"},
        "/banhammer.session.v1.NotificationService/Publish": {"channel": "hostile", "type": "t", "message": "m",
                                                              "attributes": {"k": "v"}},
        "/banhammer.session.v1.NotificationService/Subscribe": {"channels": ["hostile"],
                                                                "last_seen_ids": {"hostile": "0-0"}},
        "/banhammer.session.v1.RateLimitService/Consume": {"key": "hostile", "limit": "100", "window": "60s",
                                                           "cost": "1"},
        # energy
        "/banhammer.energy.v1.UserService/RegisterUser": {"username": "hostile_user", "email": "hostile@example.test",
                                                          "password": "correct horse battery", "role": "ROLE_USER"},
        "/banhammer.energy.v1.UserService/Authenticate": {"username": w.username, "password": w.password},
        "/banhammer.energy.v1.UserService/GetUser": {"user_id": str(w.user_id)},
        "/banhammer.energy.v1.UserService/ListUsers": {"role": "ROLE_USER", "page_size": 10},
        "/banhammer.energy.v1.UserService/SetUserRole": {"user_id": str(w.user_id), "role": "ROLE_USER"},
        "/banhammer.energy.v1.BuildingService/CreateBuilding": {"building": building},
        "/banhammer.energy.v1.BuildingService/GetBuilding": {"building_id": b},
        "/banhammer.energy.v1.BuildingService/UpdateBuilding": {"building": dict(building, building_id=b),
                                                                "update_mask": "name,address,totalArea"},
        "/banhammer.energy.v1.BuildingService/ListBuildings": {"building_type": "office", "name_prefix": "Host",
                                                               "page_size": 10},
        "/banhammer.energy.v1.BuildingService/DeleteBuilding": {"building_id": str(w.doomed_building_id),
                                                                "force": True},
        "/banhammer.energy.v1.BuildingService/CreateTenant": {"tenant": tenant},
        "/banhammer.energy.v1.BuildingService/GetTenant": {"tenant_id": str(w.tenant_id)},
        "/banhammer.energy.v1.BuildingService/UpdateTenant": {"tenant": dict(tenant, tenant_id=str(w.tenant_id)),
                                                              "update_mask": "name,contactInfo,contractEndDate"},
        "/banhammer.energy.v1.BuildingService/ListTenants": {"building_id": b, "page_size": 10},
        "/banhammer.energy.v1.BuildingService/DeleteTenant": {"tenant_id": str(w.doomed_tenant_id)},
        "/banhammer.energy.v1.EnergyUsageService/RecordUsage": {"records": [
            {"building_id": b, "daily": {"date": yesterday.isoformat(), "kwh": 12.5}},
            {"building_id": b, "meter_reading": {"read_time": _rfc3339(now - dt.timedelta(hours=1)),
                                                 "meter_kwh": 1000.0}}]},
        "/banhammer.energy.v1.EnergyUsageService/GetDailyUsage": {
            "building_id": b, "start_date": (yesterday - dt.timedelta(days=7)).isoformat(),
            "end_date": yesterday.isoformat()},
        "/banhammer.energy.v1.EnergyUsageService/GetMonthlyUsage": {"building_id": b, "start_month": "2024-01",
                                                                    "end_month": "2024-12"},
        "/banhammer.energy.v1.SensorService/WriteReadings": {"readings": [reading], "series": [series]},
        "/banhammer.energy.v1.SensorService/StreamReadings": {"sequence": "1", "readings": [reading],
                                                              "series": [series]},
        "/banhammer.energy.v1.SensorService/QueryReadings": {"time_range": recent, "window": "60s",
                                                             "aggregate": "AGGREGATE_MEAN",
                                                             "group_by": ["SENSOR_TAG_FLOOR"], "filter": sensor_filter},
        "/banhammer.energy.v1.SensorService/ExportReadingsCsv": {"time_range": recent, "filter": sensor_filter},
        "/banhammer.energy.v1.AlertService/CreateAlertRule": {"rule": {
            "name": "too hot", "scope": {"building_id": b, "floor": "1", "room": "101"}, "severity": "SEVERITY_HIGH",
            "threshold": {"sensor_type": "temperature", "comparison": "COMPARISON_ABOVE", "threshold": 30.0,
                          "clear_threshold": 28.0, "min_duration": "60s"},
            "enabled": True}},
        "/banhammer.energy.v1.AlertService/ListAlertRules": {"building_id": b, "page_size": 10},
        "/banhammer.energy.v1.AlertService/DeleteAlertRule": {"rule_id": str(w.doomed_rule_id)},
        "/banhammer.energy.v1.AlertService/ListAlerts": {"building_id": b, "states": ["ALERT_STATE_FIRING"],
                                                         "time_range": recent, "page_size": 10},
        "/banhammer.energy.v1.AlertService/AcknowledgeAlert": {"alert_id": "1", "acknowledged_by": "ops",
                                                               "note": "looking"},
        "/banhammer.energy.v1.DashboardService/GetDashboard": {"building_id": b},
        "/banhammer.energy.v1.DashboardService/ListBuildingSummaries": {"page_size": 10},
        "/banhammer.energy.v1.ForecastService/GetForecast": {"building_id": b},
    }
