"""DashboardService and ForecastService: read views served through the session service's cache."""

from __future__ import annotations

import time

from banhammer.common.v1 import common_pb2
from banhammer.energy.v1 import dashboard_pb2, dashboard_pb2_grpc, forecast_pb2, forecast_pb2_grpc, sensor_pb2
from services.runtime import FailedPrecondition

from ..buildings import BUILDING_LIST_KEY, dashboard_key
from ..caching import cached
from ..dashboard import summary_page, summary_token
from ..forecasting import HOUR_NS
from . import convert
from .auth import Auth


class ForecastServicer(forecast_pb2_grpc.ForecastServiceServicer):
    def __init__(self, forecasts, sessions, ttl: float, auth: Auth) -> None:
        self.forecasts, self.sessions, self.ttl, self.auth = forecasts, sessions, ttl, auth

    async def response(self, building_id: int) -> forecast_pb2.GetForecastResponse:
        await self.forecasts.check(building_id)
        hour = time.time_ns() // HOUR_NS  # a new hour is a new forecast

        async def compute() -> bytes:
            now_ns = time.time_ns()
            fc = await self.forecasts.compute(building_id, now_ns)
            return forecast_pb2.GetForecastResponse(
                building_id=building_id, model="hour_of_day_mean_7d", holdout_mape=fc.holdout_mape,
                holdout_range=common_pb2.TimeRange(start_time=convert.ts_ns(fc.holdout_start_ns),
                                                   end_time=convert.ts_ns(fc.holdout_end_ns)),
                training_points=fc.training_points, generate_time=convert.ts_ns(now_ns),
                points=[forecast_pb2.ForecastPoint(hour_start=convert.ts_ns(t), kwh=k) for t, k in fc.points],
            ).SerializeToString()

        raw = await cached(self.sessions, f"forecast:{building_id}:{hour}", self.ttl, compute)
        return forecast_pb2.GetForecastResponse.FromString(raw)

    async def GetForecast(self, request, context):
        await self.auth.user(context)
        return await self.response(request.building_id)


class DashboardServicer(dashboard_pb2_grpc.DashboardServiceServicer):
    def __init__(self, dashboard, buildings, forecasts: ForecastServicer, sessions, dashboard_ttl: float,
                 list_ttl: float, auth: Auth) -> None:
        self.dashboard, self.buildings, self.forecasts = dashboard, buildings, forecasts
        self.sessions, self.dashboard_ttl, self.list_ttl, self.auth = sessions, dashboard_ttl, list_ttl, auth

    async def _forecast(self, building_id: int):
        try:
            return await self.forecasts.response(building_id)
        except FailedPrecondition:
            return None  # not enough history yet: no forecast, not a degradation

    async def GetDashboard(self, request, context):
        await self.auth.user(context)

        async def compute() -> bytes:
            d = await self.dashboard.get(request.building_id, self._forecast)
            out = dashboard_pb2.GetDashboardResponse(
                building=convert.building(d.building), tenant_count=d.tenant_count,
                active_alerts=[convert.alert(a) for a in d.alerts], degraded_sources=d.degraded,
                as_of=convert.ts_ns(d.as_of_ns))
            for r in d.latest:
                out.latest_readings.append(sensor_pb2.SensorReading(
                    building_id=request.building_id, sensor_type=r.get("sensor_type") or "", floor=r.get("floor") or "",
                    room=r.get("room") or "", value=float(r["value"]), unit=r.get("unit") or "",
                    status=r.get("status") or "", time=convert.ts_ns(r["time"])))
            if d.today_kwh is not None:
                out.today_kwh = d.today_kwh
            if d.forecast is not None:
                peak = max(d.forecast.points, key=lambda p: p.kwh)
                out.forecast.CopyFrom(dashboard_pb2.ForecastSummary(
                    next_24h_kwh=sum(p.kwh for p in d.forecast.points), peak_hour_start=peak.hour_start,
                    peak_kwh=peak.kwh, model=d.forecast.model, holdout_mape=d.forecast.holdout_mape))
            return out.SerializeToString()

        if request.building_id <= 0:  # validate before touching the cache
            await self.dashboard.get(request.building_id, self._forecast)
        return dashboard_pb2.GetDashboardResponse.FromString(
            await cached(self.sessions, dashboard_key(request.building_id), self.dashboard_ttl, compute))

    async def ListBuildingSummaries(self, request, context):
        await self.auth.user(context)
        size, after = summary_page(request.page_size, request.page_token)

        async def compute() -> bytes:
            rows = await self.buildings.summaries()
            return dashboard_pb2.ListBuildingSummariesResponse(
                buildings=[dashboard_pb2.BuildingSummary(building_id=i, name=n, address=a) for i, n, a in rows],
                as_of=convert.ts_ns(time.time_ns())).SerializeToString()

        full = dashboard_pb2.ListBuildingSummariesResponse.FromString(
            await cached(self.sessions, BUILDING_LIST_KEY, self.list_ttl, compute))
        rest = [b for b in full.buildings if b.building_id > after]
        out = dashboard_pb2.ListBuildingSummariesResponse(buildings=rest[:size], as_of=full.as_of)
        if len(rest) > size:
            out.next_page_token = summary_token(rest[size - 1].building_id)
        return out
