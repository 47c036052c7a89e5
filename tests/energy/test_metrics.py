"""The energy service's own metrics, read from the process's registry (what its /metrics serves):
alert evaluations and firings."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from banhammer.energy.v1 import alert_pb2 as apb
from banhammer.energy.v1 import sensor_pb2 as spb

from .test_alerts_views import _building, threshold_rule
from .test_sensors import S, reading


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_alert_evaluations_and_firings_are_counted(stubs, energy, service):
    b = await _building(stubs, "Metered")
    await stubs.alerts.CreateAlertRule(apb.CreateAlertRuleRequest(rule=threshold_rule(b)))
    now = time.time_ns()
    hot = [reading(b, now - (90 - i * 10) * S, 700.0 + i, sensor="power", floor="1", room="m", unit="kW")
           for i in range(10)]
    await stubs.sensors.WriteReadings(spb.WriteReadingsRequest(readings=hot))
    rules = len(energy.run(service.alerts.store.enabled_rules()))
    before = _value("banhammer_energy_alert_evaluations_total"), _value("banhammer_energy_alert_firings_total")
    fired, _ = energy.run(service.alerts.evaluate(now))
    after = _value("banhammer_energy_alert_evaluations_total"), _value("banhammer_energy_alert_firings_total")
    assert fired >= 1
    assert (after[0] - before[0], after[1] - before[1]) == (rules, fired)
