"""The console end to end in chromium: a game admin finds a flagged player and bans them, creates a
rule, dry-runs it, enables it and sees it fire; an energy user opens a building's dashboard drawn
from real readings, acknowledges an alert, downloads a CSV, and is refused the game pages."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from banhammer.common.v1 import common_pb2
from banhammer.energy.v1 import alert_pb2, alert_pb2_grpc, building_pb2, building_pb2_grpc, sensor_pb2
from banhammer.energy.v1 import sensor_pb2_grpc, user_pb2, user_pb2_grpc
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.query.v1 import query_pb2, query_pb2_grpc
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from tests.harness import auth_metadata, wait_until

from .conftest import shot

PASSWORD = "correct horse battery staple"


def _ts(dt: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


def _actions(player: str, kind: str, n: int, value: float = 1.0) -> list[common_pb2.PlayerAction]:
    return [common_pb2.PlayerAction(player_id=player, action_type=kind, value=value) for _ in range(n)]


@pytest.fixture(scope="module")
def channel(console_gateway):
    with grpc.insecure_channel(console_gateway.addr) as channel:
        yield channel


@pytest.fixture(scope="module")
def flagged(channel, gateway_tokens) -> str:
    """A player the shipped rule reward_value_hourly flagged (a sum above 1,000,000 in an hour; no ban)."""
    player = f"cheat-{uuid.uuid4().hex[:8]}"
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    service = auth_metadata(gateway_tokens["service"])
    ingest.RecordActions(ingest_pb2.RecordActionsRequest(
        actions=_actions(player, "reward_collection", 11, 99_999.0)
        + _actions(f"fair-{uuid.uuid4().hex[:8]}", "reward_collection", 3, 10.0)), metadata=service, timeout=30)
    query = query_pb2_grpc.QueryServiceStub(channel)
    admin = auth_metadata(gateway_tokens["admin"])
    wait_until(lambda: query.ListViolations(query_pb2.ListViolationsRequest(player_id=player), metadata=admin,
                                            timeout=10).violations, 20, "the violation of reward_value_hourly")
    return player


def sign_in_admin(page, gw, token: str) -> None:
    page.goto(f"{gw.url}/console/")
    page.click("#mode-token")
    page.fill("input[name=token]", token)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#who:has-text('(admin)')")


def chart_total(page, selector: str) -> float:
    canvas = page.wait_for_selector(f"{selector} canvas[data-total]")
    return float(canvas.get_attribute("data-total"))


def test_admin_overview_find_flagged_player_and_ban(page, console_gateway, channel, gateway_tokens, flagged):
    sign_in_admin(page, console_gateway, gateway_tokens["admin"])
    # The browser holds no script-readable credential: the session cookie is HttpOnly.
    assert page.evaluate("document.cookie").find(gateway_tokens["admin"]) == -1
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["bh_console"]["httpOnly"] and cookies["bh_console"]["sameSite"] == "Strict"

    page.goto(f"{console_gateway.url}/console/#/overview")

    def overview_has_data() -> bool:  # shared query results may be a few seconds old: load the page again
        page.reload()
        return chart_total(page, "#chart-hourly") > 0 and chart_total(page, "#chart-rules") > 0

    wait_until(overview_has_data, 60, "overview charts drawn from the actions sent")
    assert chart_total(page, "#chart-top") > 0
    shot(page, "overview")

    page.goto(f"{console_gateway.url}/console/#/violations")
    page.click(f"table.violations a:text-is('{flagged}')")
    page.wait_for_selector("#ban-state:has-text('not banned')")
    assert "reward_value_hourly" in page.inner_text("table.violations")
    assert chart_total(page, "#chart-activity") >= 11
    shot(page, "player")
    page.fill("#ban-form input[name=reason]", "economy exploit, seen in the console")
    page.click("#ban-form button[type=submit]")
    page.wait_for_selector("#ban-state:has-text('economy exploit')")

    bans = ban_pb2_grpc.BanServiceStub(channel)
    answer = bans.IsBanned(ban_pb2.IsBannedRequest(subject=flagged), metadata=auth_metadata(gateway_tokens["service"]),
                           timeout=10)
    assert answer.banned and answer.ban.reason == "economy exploit, seen in the console"
    assert answer.ban.admin_source.admin == "e2e-admin"

    page.goto(f"{console_gateway.url}/console/#/bans")
    page.wait_for_selector(f"#bans tr[data-subject='{flagged}']")
    shot(page, "bans")


def test_rule_created_dry_run_enabled_and_fires(page, console_gateway, channel, gateway_tokens):
    kind, name = f"burst_{uuid.uuid4().hex[:6]}", f"console_{uuid.uuid4().hex[:8]}"
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    service = auth_metadata(gateway_tokens["service"])
    before = f"early-{uuid.uuid4().hex[:8]}"
    ingest.RecordActions(ingest_pb2.RecordActionsRequest(actions=_actions(before, kind, 5)), metadata=service, timeout=30)

    sign_in_admin(page, console_gateway, gateway_tokens["admin"])
    page.goto(f"{console_gateway.url}/console/#/rules")
    page.wait_for_selector("#rules tr[data-rule='reward_rate']")
    rule = {"name": name, "description": "more than 3 in a minute", "enabled": False, "severity": "SEVERITY_HIGH",
            "action_type": kind, "rate": {"window": "0s", "max_count": "3"}}
    page.fill("#rule-editor", json.dumps(rule))
    page.click("#create-rule")  # invalid: the field is named
    page.wait_for_selector(".problem code:text-is('rule.rate.window')")

    rule["rate"]["window"] = "60s"
    page.fill("#rule-editor", json.dumps(rule))
    page.click("#dry-run")
    page.wait_for_selector("#dry-result")
    assert page.inner_text("#flagged") == "1" and before in page.inner_text("#dry-result")
    shot(page, "rules-dry-run")
    page.click("#create-rule")
    page.wait_for_selector("#saved")
    row = page.wait_for_selector(f"#rules tr[data-rule='{name}']")
    assert not row.query_selector("input.enabled").is_checked()
    row.query_selector("input.enabled").click()
    page.wait_for_selector(f"#rules tr[data-rule='{name}'] input.enabled:checked")
    page.wait_for_selector(f"#audit td:text-is('{name}')")
    assert "e2e-admin" in page.inner_text("#audit")
    shot(page, "rules")

    after = f"late-{uuid.uuid4().hex[:8]}"
    ingest.RecordActions(ingest_pb2.RecordActionsRequest(actions=_actions(after, kind, 5)), metadata=service, timeout=30)
    query = query_pb2_grpc.QueryServiceStub(channel)
    admin = auth_metadata(gateway_tokens["admin"])
    request = query_pb2.ListViolationsRequest(player_id=after, rule=name)
    wait_until(lambda: query.ListViolations(request, metadata=admin, timeout=10).violations, 20, "the new rule firing")
    [hit] = query.ListViolations(request, metadata=admin, timeout=10).violations
    assert hit.severity == common_pb2.SEVERITY_HIGH and hit.evidence["count"] == 5


@pytest.fixture(scope="module")
def building(channel, gateway_tokens) -> dict:
    """An energy user, a building with temperature and power readings over the last hours, a firing alert."""
    admin = auth_metadata(gateway_tokens["admin"])
    username = f"ops_{uuid.uuid4().hex[:8]}"
    user_pb2_grpc.UserServiceStub(channel).RegisterUser(user_pb2.RegisterUserRequest(
        username=username, email=f"{username}@example.com", password=PASSWORD, role=user_pb2.ROLE_USER),
        metadata=auth_metadata(gateway_tokens["service"]), timeout=60)
    made = building_pb2_grpc.BuildingServiceStub(channel).CreateBuilding(building_pb2.CreateBuildingRequest(
        building=building_pb2.Building(name=f"Console HQ {username}", address="1 Chart Street", total_area=1200.0,
                                       floors=2, building_type="office")), metadata=admin, timeout=10)
    bid = made.building.building_id
    alerts = alert_pb2_grpc.AlertServiceStub(channel)
    alerts.CreateAlertRule(alert_pb2.CreateAlertRuleRequest(rule=alert_pb2.AlertRule(
        name="too warm", scope=alert_pb2.AlertScope(building_id=bid), severity=common_pb2.SEVERITY_HIGH, enabled=True,
        threshold=alert_pb2.ThresholdCondition(sensor_type="temperature", comparison=alert_pb2.COMPARISON_ABOVE,
                                               threshold=28.0, clear_threshold=26.0,
                                               min_duration=duration_pb2.Duration(seconds=0)))),
        metadata=admin, timeout=10)
    now = datetime.now(timezone.utc)
    readings = []
    for i in range(24, 0, -1):  # every 15 min over 6 h, two rooms
        at = _ts(now - timedelta(minutes=15 * i))
        for room, base in (("101", 21.0), ("102", 22.5)):
            readings.append(sensor_pb2.SensorReading(building_id=bid, sensor_type="temperature", floor="1", room=room,
                                                     value=base + (i % 4) * 0.5, unit="C", status="ok", time=at))
        readings.append(sensor_pb2.SensorReading(building_id=bid, sensor_type="power", floor="1", room="101",
                                                 value=40.0 + i, unit="kW", status="ok", time=at))
    readings.append(sensor_pb2.SensorReading(building_id=bid, sensor_type="temperature", floor="1", room="101",
                                             value=31.0, unit="C", status="ok", time=_ts(now)))
    sensor_pb2_grpc.SensorServiceStub(channel).WriteReadings(sensor_pb2.WriteReadingsRequest(readings=readings),
                                                             metadata=admin, timeout=30)
    wait_until(lambda: alerts.ListAlerts(alert_pb2.ListAlertsRequest(building_id=bid, states=[alert_pb2.ALERT_STATE_FIRING]),
                                         metadata=admin, timeout=10).alerts, 30, "the temperature alert firing")
    return {"id": bid, "username": username}


def test_energy_user_dashboard_alert_csv_and_no_game_pages(page, console_gateway, building, tmp_path):
    page.goto(f"{console_gateway.url}/console/")
    page.fill("input[name=username]", building["username"])
    page.fill("input[name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#who:has-text('(energy_user)')")
    assert page.query_selector("header a[href='#/overview']") is None  # no game navigation
    page.click(f"#buildings a[href='#/buildings/{building['id']}']")
    assert chart_total(page, "#chart-sensor-temperature") > 0
    points = int(page.get_attribute("#chart-sensor-temperature canvas", "data-points"))
    assert points >= 2 * 20  # two rooms' series of 15-minute means, drawn from the readings written
    assert chart_total(page, "#chart-sensor-power") > 0
    assert chart_total(page, "#chart-consumption") > 0  # hourly means of the power readings
    shot(page, "building")

    page.click("#alerts button.ack")
    page.wait_for_selector("#alerts td.state:text-is('acknowledged')")
    assert page.query_selector("#alerts button.ack") is None

    with page.expect_download() as download:
        page.click("#csv")
    path = tmp_path / "readings.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "time,building_id,sensor_type,floor,room,value,unit,status"
    assert len(lines) - 1 == 24 * 3 + 1 and all(f",{building['id']}," in line for line in lines[1:])

    page.goto(f"{console_gateway.url}/console/#/overview")
    page.wait_for_selector("#refused")
    shot(page, "energy-refused-game")
    status = page.evaluate("""async () => {
        const csrf = document.cookie.match(/bh_csrf=([^;]*)/)[1];
        const res = await fetch('/console/api/rpc/banhammer.query.v1.QueryService/GetStatsOverview',
                                {method: 'POST', headers: {'x-csrf-token': csrf, 'content-type': 'application/json'}, body: '{}'});
        return res.status;
    }""")
    assert status == 403


def test_state_changes_need_the_csrf_header(page, console_gateway, gateway_tokens):
    sign_in_admin(page, console_gateway, gateway_tokens["admin"])
    status = page.evaluate("""async () => (await fetch('/console/api/rpc/banhammer.session.v1.BanService/Ban',
        {method: 'POST', headers: {'content-type': 'application/json'}, body: '{"subject": "x", "reason": "y"}'})).status""")
    assert status == 403
