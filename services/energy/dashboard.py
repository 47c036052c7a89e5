"""A building's current state in one call: PostgreSQL first, then InfluxDB and the forecast, each of
the latter optional (a failure is reported in ``degraded`` instead of failing the call)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from services.runtime import DomainError, NotFound, pagination

from . import forecasting
from .forecasts import Forecasts
from .influx.client import InfluxRejected, InfluxUnavailable
from .models import ACKNOWLEDGED, FIRING, Alert, Building
from .sensor_query import SensorQueries
from .store.alerts import AlertStore
from .store.buildings import BuildingStore
from .store.usage import UsageStore
from .validation import Violations

log = logging.getLogger("banhammer.energy.dashboard")

HOUR_NS = 3600 * 10**9
LATEST_WINDOW_NS = HOUR_NS
MAX_LATEST = 500
MAX_ALERTS = 100
SUMMARIES = "energy.ListBuildingSummaries"


@dataclass
class DashboardData:
    building: Building
    tenant_count: int
    latest: list[dict] = field(default_factory=list)
    today_kwh: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    forecast: object | None = None  # whatever the forecast source returns
    degraded: list[str] = field(default_factory=list)
    as_of_ns: int = 0


def summary_page(page_size: int, page_token: str) -> tuple[int, int]:
    """(page size, building id the page starts after) of a ListBuildingSummaries request."""
    v = Violations()
    size = v.page_size("page_size", page_size, 100, 1000)
    cursor = v.page_token(page_token, SUMMARIES, {})
    v.raise_if_any()
    return size, pagination.integer(cursor.get("id")) if cursor else 0


def summary_token(last_id: int) -> str:
    return pagination.encode(SUMMARIES, {}, {"id": last_id})


class Dashboard:
    def __init__(self, buildings: BuildingStore, alerts: AlertStore, usage: UsageStore, queries: SensorQueries,
                 forecasts: Forecasts, power_sensor: str) -> None:
        self.buildings, self.alerts, self.usage = buildings, alerts, usage
        self.queries, self.forecasts, self.power_sensor = queries, forecasts, power_sensor

    async def get(self, building_id: int, forecast_source) -> DashboardData:
        v = Violations()
        v.positive_id("building_id", building_id)
        v.raise_if_any()
        now_ns = time.time_ns()
        building = await self.buildings.get(building_id)
        if building is None:
            raise NotFound(f"building {building_id} not found")
        tenants, alerts = await asyncio.gather(
            self.buildings.tenant_count(building_id),
            self.alerts.list_alerts(building_id, [FIRING, ACKNOWLEDGED], None, None, None, MAX_ALERTS))
        data = DashboardData(building, tenants, alerts=alerts, as_of_ns=now_ns)
        latest, today, fc = await asyncio.gather(
            self.queries.latest(building_id, now_ns - LATEST_WINDOW_NS, MAX_LATEST),
            self._today(building_id, now_ns),
            forecast_source(building_id), return_exceptions=True)
        if isinstance(latest, BaseException) or isinstance(today, BaseException):
            self._degrade(data, "influxdb", latest if isinstance(latest, BaseException) else today)
        if not isinstance(latest, BaseException):
            data.latest = latest
        if not isinstance(today, BaseException):
            data.today_kwh = today
        if isinstance(fc, BaseException):
            self._degrade(data, "forecast", fc)
        else:
            data.forecast = fc
        return data

    @staticmethod
    def _degrade(data: DashboardData, source: str, exc: BaseException) -> None:
        if not isinstance(exc, (DomainError, InfluxUnavailable, InfluxRejected)):
            log.error("dashboard source failed", exc_info=exc, extra={"source": source})
        if source not in data.degraded:
            data.degraded.append(source)

    async def _today(self, building_id: int, now_ns: int) -> float | None:
        """Reported usage for today if any, else today's hourly power integral from InfluxDB."""
        today = dt.datetime.fromtimestamp(now_ns / 1e9, dt.timezone.utc).date()
        reported = await self.usage.daily(building_id, today, today)
        if today in reported:
            return reported[today]
        start = now_ns - now_ns % forecasting.DAY_NS
        hours = await self.queries.hourly_kwh(building_id, self.power_sensor, start, now_ns + 1)
        if not hours:
            return None
        # Each hour's mean kW counts for the part of it that has passed: the current hour is not
        # over yet, so a full hour of it would overstate today by up to its whole consumption.
        return sum(kwh * min(now_ns - hour, HOUR_NS) / HOUR_NS for hour, kwh in hours.items())
