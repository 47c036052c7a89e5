"""Alert rules, the alert lifecycle, and the evaluator that fires and clears alerts.

The evaluator is stateless between ticks: each tick reads the recent readings of every enabled rule
from InfluxDB and the open alerts from PostgreSQL (the one open alert per rule and series is the state),
then applies the pure decisions of ``alerting``. Notifications go through an outbox (flags on the alert
row), so an alert stored while the session service is down is published when it returns.

Threshold rules are also evaluated right after readings are written (``written`` / ``run_on_write``):
only the rules of the (building, sensor type) pairs a write touched, gathered over a short window so a
burst of batches costs one pass. An alert then fires within about that window of the reading that
completes its minimum duration, instead of at the next tick; the periodic tick remains for drift rules
and for readings that reached InfluxDB some other way (the spool's replay after an outage, say).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time

from services.runtime import FailedPrecondition, NotFound, pagination
from services.runtime.validation import Seconds

from . import alerting, forecasting, metrics
from .influx.client import InfluxRejected, InfluxUnavailable, quote_literal
from .models import ABOVE, ACKNOWLEDGED, BELOW, CLEARED, FIRING, Alert, AlertRule, Page
from .sensor_query import SensorQueries
from .session_client import SessionClient
from .store.alerts import AlertStore
from .validation import Violations

log = logging.getLogger("banhammer.energy.alerts")

HOUR_MS = 3_600_000
STATE_NAMES = {FIRING: "FIRING", ACKNOWLEDGED: "ACKNOWLEDGED", CLEARED: "CLEARED"}


def channel(building_id: int) -> str:
    return f"building_{building_id:03d}"


def _duration_text(ms: int) -> str:
    seconds = ms // 1000
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def check_rule(r: AlertRule) -> None:
    v = Violations()
    v.text("rule.name", r.name, 1, 100, unit="characters")
    v.positive_id("rule.scope.building_id", r.building_id)
    # The same rule as readings' tags: a rule must be able to match what WriteReadings accepts.
    v.tag("rule.scope.floor", "floor", r.floor)
    v.tag("rule.scope.room", "room", r.room)
    if not 1 <= r.severity <= 4:
        v.add("rule.severity", "must be set")
    if r.kind == "threshold":
        p = "rule.threshold"
        v.tag(f"{p}.sensor_type", "sensor_type", r.sensor_type)
        if r.comparison not in (ABOVE, BELOW):
            v.add(f"{p}.comparison", "must be ABOVE or BELOW")
        if v.finite(f"{p}.threshold", r.threshold) and v.finite(f"{p}.clear_threshold", r.clear_threshold):
            if r.comparison == ABOVE and r.clear_threshold > r.threshold:
                v.add(f"{p}.clear_threshold", "must be <= threshold for ABOVE")
            if r.comparison == BELOW and r.clear_threshold < r.threshold:
                v.add(f"{p}.clear_threshold", "must be >= threshold for BELOW")
        if not 0 <= r.min_duration_ms <= 24 * HOUR_MS:
            v.add(f"{p}.min_duration", "must be 0..24 h")
    elif r.kind == "forecast_drift":
        p = "rule.forecast_drift"
        if not (math.isfinite(r.margin_percent) and 1 <= r.margin_percent <= 1000):
            v.add(f"{p}.margin_percent", "must be 1..1000")
        if r.min_duration_ms % HOUR_MS or not HOUR_MS <= r.min_duration_ms <= 7 * 24 * HOUR_MS:
            v.add(f"{p}.min_duration", "must be whole hours, 1 h..7 days")
        if r.floor or r.room:
            v.add("rule.scope", "forecast drift rules apply to a whole building (no floor or room)")
    else:
        v.add("rule.condition", "exactly one of threshold or forecast_drift must be set")
    v.raise_if_any()


def _alert_position(cursor: dict) -> tuple[dt.datetime, int]:
    """(fired_at, alert_id) of the last alert of the previous page; a forged value is INVALID_ARGUMENT."""
    try:
        fired_at = dt.datetime.fromisoformat(pagination.text(cursor.get("t")))
    except ValueError:
        raise pagination.invalid() from None
    if fired_at.tzinfo is None:
        raise pagination.invalid()
    return fired_at, pagination.integer(cursor.get("id"))


# Pairs remembered between on-write passes; past this, the next pass evaluates every rule instead.
MAX_WRITTEN_PAIRS = 10_000


class Alerts:
    def __init__(self, store: AlertStore, queries: SensorQueries, sessions: SessionClient, power_sensor: str) -> None:
        self.store = store
        self.queries = queries
        self.sessions = sessions
        self.power_sensor = power_sensor
        self._written: set[tuple[int, str]] | None = set()  # None: too many, evaluate everything
        self._poked = asyncio.Event()

    # --- rules -------------------------------------------------------------------------------------
    async def create_rule(self, rule: AlertRule) -> AlertRule:
        check_rule(rule)
        return await self.store.insert_rule(rule)

    async def list_rules(self, building_id: int, page_size: int, page_token: str) -> Page:
        v = Violations()
        v.id("building_id", building_id, optional=True)
        size = v.page_size("page_size", page_size, 50, 500)
        v.raise_if_any()
        filters = {"building": building_id}
        return Page(*await pagination.id_page(
            "energy.ListAlertRules", filters, page_token, size,
            lambda after, limit: self.store.list_rules(building_id, after, limit), lambda row: row.rule_id))

    async def delete_rule(self, rule_id: int) -> int:
        v = Violations()
        v.positive_id("rule_id", rule_id)
        v.raise_if_any()
        cleared = await self.store.delete_rule(rule_id)
        if cleared:
            await self.publish_pending()
        return len(cleared)

    # --- alerts ------------------------------------------------------------------------------------
    async def list_alerts(self, building_id: int, states: list[int], start: Seconds | None, end: Seconds | None,
                          page_size: int, page_token: str) -> Page:
        v = Violations()
        v.id("building_id", building_id, optional=True)
        if len(states) > 3:
            v.add("states", "at most 3 states")
        for i, state in enumerate(states[:3]):
            if state not in STATE_NAMES:
                v.add(f"states[{i}]", "must be FIRING, ACKNOWLEDGED or CLEARED")
        if start is not None:
            start = v.timestamp("time_range.start_time", start)
        if end is not None:
            end = v.timestamp("time_range.end_time", end)
        if start and end and end <= start:
            v.add("time_range.end_time", "must be after start_time")
        size = v.page_size("page_size", page_size, 50, 500)
        v.raise_if_any()
        filters = {"b": building_id, "s": sorted(set(states)), "r": [str(start), str(end)]}
        cursor = pagination.decode(page_token, "energy.ListAlerts", filters)
        after = _alert_position(cursor) if cursor else None
        rows = await self.store.list_alerts(building_id, sorted(set(states)), start, end, after, size + 1)
        page = Page(rows[:size])
        if len(rows) > size:
            last = rows[size - 1]
            position = {"t": last.fired_at.isoformat(), "id": last.alert_id}
            page.next_token = pagination.encode("energy.ListAlerts", filters, position)
        return page

    async def acknowledge(self, alert_id: int, by: str, note: str) -> Alert:
        v = Violations()
        v.positive_id("alert_id", alert_id)
        v.text("acknowledged_by", by, 1, 50, unit="characters")
        v.text("note", note, 0, 1024)
        v.raise_if_any()
        alert, state = await self.store.acknowledge(alert_id, by, note)
        if alert is None:
            if state is None:
                raise NotFound(f"alert {alert_id} not found")
            raise FailedPrecondition(f"alert {alert_id} is {STATE_NAMES[state]}, only FIRING alerts can be acknowledged")
        return alert

    # --- notifications (outbox) ---------------------------------------------------------------------
    async def publish_pending(self) -> int:
        published = 0
        for alert, fire_done in await self.store.unpublished():
            if not fire_done:
                if not await self._publish(alert, "energy_alert", FIRING):
                    return published
                await self.store.mark_published(alert.alert_id, clear=False)
                published += 1
            if alert.state == CLEARED:
                if not await self._publish(alert, "alert_cleared", CLEARED):
                    return published
                await self.store.mark_published(alert.alert_id, clear=True)
                published += 1
        return published

    async def _publish(self, alert: Alert, type_: str, state: int) -> bool:
        text = alert.message if state == FIRING else f"cleared: {alert.message}"
        return await self.sessions.publish(channel(alert.building_id), type_, text[:4096], {
            "alert_id": str(alert.alert_id), "rule_id": str(alert.rule_id), "state": STATE_NAMES[state],
            "value": repr(alert.trigger_value), "severity": str(alert.severity),
            "floor": alert.floor, "room": alert.room, "sensor_type": alert.sensor_type,
        })

    # --- evaluation --------------------------------------------------------------------------------
    async def evaluate(self, now_ns: int | None = None, only: set[tuple[int, str]] | None = None) -> tuple[int, int]:
        """One evaluator tick over every enabled rule (``only``: just the threshold rules of these
        (building id, sensor type) pairs); returns (fired, cleared)."""
        now_ns = now_ns or time.time_ns()
        rules = await self.store.enabled_rules()
        if only is not None:
            rules = [r for r in rules if r.kind == "threshold" and (r.building_id, r.sensor_type) in only]
            if not rules:
                return 0, 0
        open_alerts = await self.store.open_alerts()
        fired = cleared = 0
        for rule in rules:
            try:
                if rule.kind == "threshold":
                    f, c = await self._evaluate_threshold(rule, open_alerts, now_ns)
                else:
                    f, c = await self._evaluate_drift(rule, open_alerts, now_ns)
            except (InfluxUnavailable, InfluxRejected) as exc:
                log.warning("alert rule not evaluated", extra={"rule_id": rule.rule_id, "reason": str(exc)})
                continue
            fired += f
            cleared += c
        metrics.ALERT_EVALUATIONS.inc(len(rules))
        metrics.ALERT_FIRINGS.inc(fired)
        await self.publish_pending()
        return fired, cleared

    async def _evaluate_threshold(self, rule: AlertRule, open_alerts: dict, now_ns: int) -> tuple[int, int]:
        lookback_ns = rule.min_duration_ms * 10**6 + 10 * 60 * 10**9
        scope = ""
        if rule.floor:
            scope += f" AND floor = {quote_literal(rule.floor)}"
        if rule.room:
            scope += f" AND room = {quote_literal(rule.room)}"
        q = (f"SELECT value, unit FROM {self.queries.influx.qualified_measurement} "
             f"WHERE building_id = {quote_literal(str(rule.building_id))} AND sensor_type = {quote_literal(rule.sensor_type)}"
             f"{scope} AND time >= {now_ns - lookback_ns} AND time <= {now_ns} GROUP BY floor, room")
        series = await self.queries.influx.query(q)
        cond = alerting.Threshold(rule.comparison, rule.threshold, rule.clear_threshold, rule.min_duration_ms * 10**6)
        fired = cleared = 0
        for s in series:
            floor, room = s["tags"].get("floor", ""), s["tags"].get("room", "")
            samples = [(row["time"], float(row["value"])) for row in s["rows"]]
            unit = (s["rows"][-1]["unit"] or "") if s["rows"] else ""
            current = open_alerts.get((rule.rule_id, floor, room))
            decision = alerting.decide_threshold(cond, samples, current is not None)
            when = dt.datetime.fromtimestamp(samples[-1][0] / 1e9, dt.timezone.utc) if samples else None
            if decision.action == "fire":
                word = "above" if rule.comparison == ABOVE else "below"
                u = f" {unit}" if unit else ""
                message = (f"{rule.sensor_type} {decision.value:g}{u} {word} {rule.threshold:g}{u} for "
                           f"{_duration_text(rule.min_duration_ms)}")
                fired += await self.store.fire(rule, floor, room, message[:1024], decision.value, rule.threshold,
                                               when) is not None
            elif decision.action == "clear":
                cleared += await self.store.clear(current.alert_id, when) is not None
        return fired, cleared

    async def _evaluate_drift(self, rule: AlertRule, open_alerts: dict, now_ns: int) -> tuple[int, int]:
        hours = rule.min_duration_ms // HOUR_MS
        current_hour = now_ns - now_ns % forecasting.HOUR_NS
        start = current_hour - (forecasting.WINDOW_DAYS * 24 + hours) * forecasting.HOUR_NS
        history = await self.queries.hourly_kwh(rule.building_id, self.power_sensor, start, current_hour)
        pairs = []
        for i in range(hours, 0, -1):
            t = current_hour - i * forecasting.HOUR_NS
            expected = forecasting.expected(history, t)
            if t in history and expected is not None:
                pairs.append((history[t], expected))
        current = open_alerts.get((rule.rule_id, "", ""))
        decision = alerting.decide_drift(pairs, rule.margin_percent, hours, current is not None)
        when = dt.datetime.fromtimestamp(current_hour / 1e9, dt.timezone.utc)
        if decision.action == "fire":
            forecast_kwh = pairs[-1][1]
            message = (f"consumption {decision.value:.1f} kWh vs forecast {forecast_kwh:.1f} kWh: off by more than "
                       f"{rule.margin_percent:g}% for {hours}h")
            return int(await self.store.fire(rule, "", "", message, decision.value, forecast_kwh, when) is not None), 0
        if decision.action == "clear":
            return 0, int(await self.store.clear(current.alert_id, when) is not None)
        return 0, 0

    def written(self, pairs: set[tuple[int, str]]) -> None:
        """Readings of these (building id, sensor type) pairs are now in InfluxDB."""
        if self._written is not None:
            self._written |= pairs
            if len(self._written) > MAX_WRITTEN_PAIRS:
                self._written = None
        self._poked.set()

    async def run_on_write(self, gather: float, stop: asyncio.Event) -> None:
        """Evaluate the rules of what was written, at most once per ``gather`` seconds."""
        while not stop.is_set():
            await self._poked.wait()
            await asyncio.sleep(gather)  # let a burst of batches arrive: one pass for all of them
            self._poked.clear()
            only, self._written = self._written, set()
            try:
                await self.evaluate(only=only)
            except Exception:  # noqa: BLE001 - the loop must survive a bad pass; logged with trace
                log.exception("alert evaluation after write failed")

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """The evaluator loop (one per process; the open-alert unique index makes replicas safe)."""
        while not stop.is_set():
            try:
                await self.evaluate()
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick; logged with trace
                log.exception("alert evaluation failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
