"""One rule for a sensor tag value wherever it arrives: a value WriteReadings refuses, CreateAlertRule
and the reading filters refuse too, and what it accepts they accept (a rule that can never match,
or a filter InfluxDB cannot parse, would otherwise be stored or sent)."""

from __future__ import annotations

import time

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.energy.v1 import alert_pb2 as apb
from banhammer.energy.v1 import sensor_pb2 as spb

from .helpers import violations
from .test_alerts_views import _building, threshold_rule
from .test_sensors import S, reading, time_range

VALUES = ["power", "", "x" * 16, "x" * 17, "x" * 64, "x" * 65, "é" * 8, "é" * 9, "a\x00b", "a\nb", "a\rb", "a\tb",
          "a\x1bb", "a\x7fb", "a b", "a,b=c", "a\\", "a\\,b", "a\\b", "quote'and\"dq", "Zürich-😀", "a\u202eb"]


async def _accepted(call) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        return False
    return True


@pytest.mark.parametrize("tag", ["sensor_type", "floor", "room"])
async def test_readings_rules_and_filters_accept_the_same_tag_values(stubs, tag):
    b = await _building(stubs, "Tags")
    now = time.time_ns()
    mismatches = []
    for value in VALUES:
        write = await _accepted(stubs.sensors.WriteReadings(spb.WriteReadingsRequest(
            readings=[reading(b, now - S, 1.0, **{"sensor": value} if tag == "sensor_type" else {tag: value})])))
        scope = apb.AlertScope(building_id=b, **({} if tag == "sensor_type" else {tag: value}))
        rule = threshold_rule(b, **({"sensor_type": value} if tag == "sensor_type" else {}))
        rule.scope.CopyFrom(scope)
        create = await _accepted(stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=rule)))
        field = {"sensor_type": "sensor_types", "floor": "floors", "room": "rooms"}[tag]
        query = await _accepted(stubs.sensors.QueryReadings(spb.QueryReadingsRequest(
            time_range=time_range(now - 60 * S, now), window={"seconds": 60}, aggregate=spb.AGGREGATE_MEAN,
            filter=spb.ReadingFilter(building_ids=[b], **{field: [value]}))))
        if not write == create == query:
            mismatches.append((value, {"write": write, "rule": create, "filter": query}))
    assert mismatches == []


async def test_a_control_character_is_named_the_same_way_everywhere(stubs):
    b = await _building(stubs, "Tags")
    now = time.time_ns()
    with pytest.raises(grpc.aio.AioRpcError) as write:
        await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=[reading(b, now, 1.0, floor="2\n")]))
    rule = threshold_rule(b)
    rule.scope.floor = "2\n"
    with pytest.raises(grpc.aio.AioRpcError) as create:
        await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=rule))
    with pytest.raises(grpc.aio.AioRpcError) as export:
        async for _ in stubs.sensors.ExportReadingsCsv(spb.ExportReadingsCsvRequest(
                time_range=common_pb2.TimeRange(start_time={"seconds": now // S - 60}),
                filter=spb.ReadingFilter(floors=["ok", "2\n"]))):
            pass
    assert violations(write.value) == {"readings[0].floor": "must not contain control characters"}
    assert violations(create.value) == {"rule.scope.floor": "must not contain control characters"}
    assert violations(export.value) == {"filter.floors[1]": "must not contain control characters"}
