"""ForecastService: the building's hourly consumption history from InfluxDB, then ``forecasting``."""

from __future__ import annotations

import time

from services.runtime import NotFound

from . import forecasting
from .sensor_query import SensorQueries
from .store.buildings import BuildingStore
from .validation import Violations

HISTORY_DAYS = forecasting.WINDOW_DAYS + 1  # the 7-day window plus the held-out day


class Forecasts:
    def __init__(self, buildings: BuildingStore, queries: SensorQueries, power_sensor: str, min_history_hours: int) -> None:
        self.buildings = buildings
        self.queries = queries
        self.power_sensor = power_sensor
        self.min_history_hours = min_history_hours

    async def check(self, building_id: int) -> None:
        v = Violations()
        v.positive_id("building_id", building_id)
        v.raise_if_any()
        if not await self.buildings.exists(building_id):
            raise NotFound(f"building {building_id} not found")

    async def compute(self, building_id: int, now_ns: int | None = None) -> forecasting.Forecast:
        now_ns = now_ns or time.time_ns()
        current_hour = now_ns - now_ns % forecasting.HOUR_NS
        history = await self.queries.hourly_kwh(building_id, self.power_sensor,
                                                current_hour - HISTORY_DAYS * forecasting.DAY_NS, current_hour)
        return forecasting.forecast(history, now_ns, self.min_history_hours)
