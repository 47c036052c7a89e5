"""Alerts end to end (rule -> readings -> evaluator -> PostgreSQL + session notifications ->
acknowledge -> clear), forecast-drift alerts, forecasts and the dashboard, on the real stores."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2

from banhammer.common.v1 import common_pb2
from banhammer.energy.v1 import alert_pb2 as apb
from banhammer.energy.v1 import building_pb2, dashboard_pb2, forecast_pb2
from banhammer.energy.v1 import sensor_pb2 as spb
from banhammer.session.v1 import notification_pb2

from .helpers import expect_error, violations
from .test_sensors import S, reading

H = 3600 * S


async def _building(stubs, name="Alerted") -> int:
    return (await stubs.buildings.CreateBuilding(building_pb2.CreateBuildingRequest(
        building=building_pb2.Building(name=f"{name} {uuid.uuid4().hex[:6]}", address="x")))).building.building_id


def threshold_rule(b: int, **kw) -> apb.AlertRule:
    cond = dict(sensor_type="power", comparison=apb.COMPARISON_ABOVE, threshold=500, clear_threshold=450,
                min_duration=duration_pb2.Duration(seconds=60))
    cond.update(kw)
    return apb.AlertRule(name="peak power", scope=apb.AlertScope(building_id=b), severity=common_pb2.SEVERITY_HIGH,
                         threshold=apb.ThresholdCondition(**cond), enabled=True)


def _alerts_of(stubs, b: int):
    """The building's notification channel from its beginning (nothing published is missed)."""
    channel = f"building_{b:03d}"
    return stubs.notifications.Subscribe(notification_pb2.SubscribeRequest(
        channels=[channel], last_seen_ids={channel: "0-0"}))


async def _next_notification(stream, timeout=10.0):
    while True:
        event = await asyncio.wait_for(stream.read(), timeout)
        assert event is not grpc.aio.EOF
        if event.WhichOneof("event") == "notification":
            return event.notification


async def test_rule_validation(stubs):
    b = await _building(stubs)
    bad = apb.AlertRule(name="", scope=apb.AlertScope(building_id=b, floor="f" * 17), threshold=apb.ThresholdCondition(
        sensor_type="", threshold=math.nan, clear_threshold=1, min_duration=duration_pb2.Duration(seconds=90000)))
    err = await expect_error(stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=bad)),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert {"rule.name", "rule.scope.floor", "rule.severity", "rule.threshold.sensor_type",
            "rule.threshold.comparison", "rule.threshold.threshold", "rule.threshold.min_duration"} <= set(violations(err))
    err = await expect_error(stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(
        rule=threshold_rule(b, clear_threshold=600))), grpc.StatusCode.INVALID_ARGUMENT)
    assert "rule.threshold.clear_threshold" in violations(err)
    drift = apb.AlertRule(name="d", scope=apb.AlertScope(building_id=b, room="r"), severity=1,
                          forecast_drift=apb.ForecastDriftCondition(margin_percent=0.5,
                                                                    min_duration=duration_pb2.Duration(seconds=5400)))
    err = await expect_error(stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=drift)),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert {"rule.scope", "rule.forecast_drift.margin_percent", "rule.forecast_drift.min_duration"} <= set(violations(err))
    await expect_error(stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=threshold_rule(10**12))),
                       grpc.StatusCode.NOT_FOUND)


async def test_threshold_alert_lifecycle_is_stored_and_published(stubs, energy, service):
    b = await _building(stubs)
    rule = (await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=threshold_rule(b)))).rule
    assert rule.rule_id > 0 and rule.threshold.min_duration.seconds == 60
    listed = await stubs.alerts.ListAlertRules(apb.ListAlertRulesRequest(building_id=b))
    assert [r.rule_id for r in listed.rules] == [rule.rule_id]
    stream = _alerts_of(stubs, b)
    now = time.time_ns()
    # 90 s above the threshold on floor 3 / room a; a short spike on room b never lasts 60 s.
    hot = [reading(b, now - (90 - i * 10) * S, 600.0 + i, sensor="power", floor="3", room="a", unit="kW")
           for i in range(10)]
    spike = [reading(b, now - 20 * S, 900.0, sensor="power", floor="3", room="b", unit="kW"),
             reading(b, now - 10 * S, 100.0, sensor="power", floor="3", room="b", unit="kW")]
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=hot + spike))
    assert energy.run(service.alerts.evaluate(now)) == (1, 0)
    assert energy.run(service.alerts.evaluate(now)) == (0, 0)  # state is the open alert: no duplicate
    fired = await _next_notification(stream)
    assert fired.type == "energy_alert" and fired.attributes["state"] == "FIRING"
    assert fired.attributes["rule_id"] == str(rule.rule_id)
    (alert,) = (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=b))).alerts
    assert str(alert.alert_id) == fired.attributes["alert_id"]
    assert alert.state == apb.ALERT_STATE_FIRING and alert.scope.room == "a" and alert.trigger_value == 609.0
    assert alert.message == "power 609 kW above 500 kW for 1m"
    ack = await stubs.alerts.AcknowledgeAlert(apb.AcknowledgeAlertRequest(alert_id=alert.alert_id,
                                                                          acknowledged_by="operator1", note="on it"))
    assert ack.alert.state == apb.ALERT_STATE_ACKNOWLEDGED and ack.alert.acknowledged_by == "operator1"
    await expect_error(stubs.alerts.AcknowledgeAlert(apb.AcknowledgeAlertRequest(
        alert_id=alert.alert_id, acknowledged_by="operator1")), grpc.StatusCode.FAILED_PRECONDITION)
    await expect_error(stubs.alerts.AcknowledgeAlert(apb.AcknowledgeAlertRequest(
        alert_id=10**12, acknowledged_by="x")), grpc.StatusCode.NOT_FOUND)
    # Between the thresholds (470) nothing changes; past the clear threshold for 60 s it clears.
    calm = [reading(b, now + i * 10 * S, 470.0 if i < 3 else 400.0, sensor="power", floor="3", room="a")
            for i in range(1, 11)]
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=calm))
    assert energy.run(service.alerts.evaluate(now + 35 * S)) == (0, 0)
    assert energy.run(service.alerts.evaluate(now + 100 * S)) == (0, 1)
    cleared = await _next_notification(stream)
    assert cleared.type == "alert_cleared" and cleared.attributes["alert_id"] == str(alert.alert_id)
    stream.cancel()
    (done,) = (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=b,
                                                                   states=[apb.ALERT_STATE_CLEARED]))).alerts
    assert done.cleared_at.seconds > 0 and done.acknowledge_note == "on it"
    assert not (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(
        building_id=b, states=[apb.ALERT_STATE_FIRING, apb.ALERT_STATE_ACKNOWLEDGED]))).alerts
    deleted = await stubs.alerts.DeleteAlertRule(apb.DeleteAlertRuleRequest(rule_id=rule.rule_id))
    assert deleted.cleared_alert_count == 0
    await expect_error(stubs.alerts.DeleteAlertRule(apb.DeleteAlertRuleRequest(rule_id=rule.rule_id)),
                       grpc.StatusCode.NOT_FOUND)


async def test_alert_pages_are_newest_first_and_rule_delete_clears(stubs, energy, service):
    b = await _building(stubs)
    rule = (await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(
        rule=threshold_rule(b, min_duration=duration_pb2.Duration())))).rule
    now = time.time_ns()
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=[
        reading(b, now - (5 - i) * S, 700.0, sensor="power", floor="1", room=f"r{i}") for i in range(5)]))
    assert energy.run(service.alerts.evaluate(now)) == (5, 0)
    seen, token = [], ""
    while True:
        page = await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=b, page_size=2, page_token=token))
        seen += [(a.fired_at.ToNanoseconds(), a.alert_id) for a in page.alerts]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert (await stubs.alerts.DeleteAlertRule(apb.DeleteAlertRuleRequest(rule_id=rule.rule_id))).cleared_alert_count == 5


async def _write_history(stubs, b: int, kwh_for_hour, days: int = 8) -> int:
    """One 'power' reading (kW) at each hour start for ``days`` days up to the current hour."""
    now = time.time_ns()
    hour = now - now % H
    rows = [reading(b, t, kwh_for_hour(t), sensor="power", floor="", room="", unit="kW")
            for t in range(hour - days * 24 * H, hour, H)]
    for i in range(0, len(rows), 5000):
        await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=rows[i:i + 5000]))
    return hour


async def test_forecast_dashboard_and_drift_alert(stubs, energy, service):
    b = await _building(stubs, "Forecast")
    await expect_error(stubs.forecast.GetForecast(forecast_pb2.GetForecastRequest(building_id=b)),
                       grpc.StatusCode.FAILED_PRECONDITION)
    profile = lambda t: 100.0 + 50.0 * math.sin((t // H) % 24 / 24 * 2 * math.pi)  # noqa: E731
    hour = await _write_history(stubs, b, profile)
    fc = await stubs.forecast.GetForecast(forecast_pb2.GetForecastRequest(building_id=b))
    assert len(fc.points) == 24 and fc.points[0].hour_start.ToNanoseconds() == hour + H
    assert all(p.kwh == pytest.approx(profile(p.hour_start.ToNanoseconds())) for p in fc.points)
    assert fc.holdout_mape == pytest.approx(0.0, abs=1e-6) and fc.model == "hour_of_day_mean_7d"
    again = await stubs.forecast.GetForecast(forecast_pb2.GetForecastRequest(building_id=b))
    assert again.generate_time == fc.generate_time  # served from the session service's cache
    await expect_error(stubs.forecast.GetForecast(forecast_pb2.GetForecastRequest(building_id=10**12)),
                       grpc.StatusCode.NOT_FOUND)

    await stubs.buildings.CreateTenant(building_pb2.CreateTenantRequest(tenant=building_pb2.Tenant(
        building_id=b, name="T")))
    now = time.time_ns()
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=[
        reading(b, now - 60 * S, 21.5, floor="2", room="201"), reading(b, now - 30 * S, 22.5, floor="2", room="201")]))
    dash = await stubs.dashboard.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=b))
    assert dash.building.building_id == b and dash.tenant_count == 1 and not dash.degraded_sources
    latest = {(r.sensor_type, r.floor, r.room): r.value for r in dash.latest_readings}
    assert latest[("temperature", "2", "201")] == 22.5
    assert dash.forecast.model == "hour_of_day_mean_7d"
    assert dash.forecast.next_24h_kwh == pytest.approx(sum(p.kwh for p in fc.points))
    assert dash.HasField("today_kwh")
    await expect_error(stubs.dashboard.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=10**12)),
                       grpc.StatusCode.NOT_FOUND)

    # Drift: the last two complete hours at double the usual consumption.
    d = await _building(stubs, "Drift")
    await _write_history(stubs, d, lambda t: 200.0 if t >= hour - 2 * H else 100.0)
    await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=apb.AlertRule(
        name="drift", scope=apb.AlertScope(building_id=d), severity=common_pb2.SEVERITY_MEDIUM, enabled=True,
        forecast_drift=apb.ForecastDriftCondition(margin_percent=50, min_duration=duration_pb2.Duration(seconds=7200)))))
    energy.run(service.alerts.evaluate())
    (alert,) = (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=d))).alerts
    assert alert.state == apb.ALERT_STATE_FIRING and alert.trigger_value == 200.0 and alert.threshold == 100.0
    assert alert.sensor_type == "" and "forecast" in alert.message


async def test_a_write_that_completes_the_duration_fires_without_a_tick(stubs, live_stubs):
    """The live runtime has no periodic tick and nobody calls evaluate: only the on-write pass can
    fire this alert, and only for the building whose readings were written."""
    b, other = await _building(stubs, "Live"), await _building(stubs, "Quiet")
    for building in (b, other):
        await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=threshold_rule(building)))
    stream = _alerts_of(stubs, b)
    now = time.time_ns()
    hot = [reading(b, now - (90 - i * 10) * S, 600.0 + i, sensor="power", floor="1", room="a", unit="kW")
           for i in range(10)]
    await live_stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=hot[:5]))  # 40 s: not yet
    await live_stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=hot[5:]))  # now 90 s
    fired = await _next_notification(stream)
    assert fired.type == "energy_alert" and fired.attributes["value"] == "609.0"
    (alert,) = (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=b))).alerts
    assert alert.state == apb.ALERT_STATE_FIRING and alert.trigger_value == 609.0
    # The other building's rule was not touched by the write, and has no readings anyway.
    assert not (await stubs.alerts.ListAlerts(apb.ListAlertsRequest(building_id=other))).alerts


async def test_today_counts_only_the_elapsed_part_of_the_current_hour(stubs):
    b = await _building(stubs, "Today")
    before = time.time_ns()
    hour = before - before % H
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=[
        reading(b, hour, 120.0, sensor="power", floor="1", room="main", unit="kW")]))
    dash = await stubs.dashboard.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=b))
    after = time.time_ns()
    if after - after % H != hour:
        pytest.skip("the hour turned during the test")  # a later run asserts it
    # 120 kW for the elapsed part of this hour (the server's clock is between before and after).
    assert 120.0 * (before - hour) / H - 1e-9 <= dash.today_kwh <= 120.0 * (after - hour) / H + 1e-9


async def test_dashboard_degrades_when_influxdb_is_down(stubs, influx_server):
    b = await _building(stubs, "Degraded")
    with influx_server.down():
        dash = await stubs.dashboard.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=b))
    assert dash.building.building_id == b and "influxdb" in dash.degraded_sources
    assert not dash.latest_readings and not dash.HasField("today_kwh")


async def test_building_summaries_are_cached_and_invalidated(stubs):
    b = await _building(stubs, "Listed")
    seen, token = [], ""
    while True:
        page = await stubs.dashboard.ListBuildingSummaries(dashboard_pb2.ListBuildingSummariesRequest(
            page_size=3, page_token=token))
        seen += [s.building_id for s in page.buildings]
        token = page.next_page_token
        if not token:
            break
    assert b in seen and seen == sorted(seen)
    first = await stubs.dashboard.ListBuildingSummaries(dashboard_pb2.ListBuildingSummariesRequest())
    second = await stubs.dashboard.ListBuildingSummaries(dashboard_pb2.ListBuildingSummariesRequest())
    assert first.as_of == second.as_of  # one cached list
    c = await _building(stubs, "New")  # creating a building drops the cached list
    third = await stubs.dashboard.ListBuildingSummaries(dashboard_pb2.ListBuildingSummariesRequest(page_size=1000))
    assert c in [s.building_id for s in third.buildings]
