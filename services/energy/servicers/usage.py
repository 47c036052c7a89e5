from __future__ import annotations

import datetime as dt

from banhammer.energy.v1 import usage_pb2, usage_pb2_grpc

from ..usage import UsageRecord
from .auth import Auth


def _record(pb: usage_pb2.UsageRecord) -> UsageRecord:
    kind = pb.WhichOneof("measurement")
    if kind == "daily":
        return UsageRecord(pb.building_id, daily_date=pb.daily.date, daily_kwh=pb.daily.kwh)
    if kind == "meter_reading":
        return UsageRecord(pb.building_id, read_time=pb.meter_reading.read_time, meter_kwh=pb.meter_reading.meter_kwh)
    return UsageRecord(pb.building_id)


class UsageServicer(usage_pb2_grpc.EnergyUsageServiceServicer):
    def __init__(self, usage, auth: Auth) -> None:
        self.usage, self.auth = usage, auth

    async def RecordUsage(self, request, context):
        await self.auth.feed(context)
        count = await self.usage.record([_record(r) for r in request.records], dt.datetime.now(dt.timezone.utc))
        return usage_pb2.RecordUsageResponse(recorded_count=count)

    async def GetDailyUsage(self, request, context):
        await self.auth.user(context)
        days = await self.usage.daily(request.building_id, request.start_date, request.end_date)
        return usage_pb2.GetDailyUsageResponse(
            days=[usage_pb2.DailyUsage(date=d.day.isoformat(), kwh=d.kwh, derived_from_meter=d.derived) for d in days],
            total_kwh=sum(d.kwh for d in days))

    async def GetMonthlyUsage(self, request, context):
        await self.auth.user(context)
        months = await self.usage.monthly(request.building_id, request.start_month, request.end_month)
        return usage_pb2.GetMonthlyUsageResponse(
            months=[usage_pb2.MonthlyUsage(month=m, kwh=k, days_with_data=n) for m, k, n in months],
            total_kwh=sum(k for _, k, _ in months))
