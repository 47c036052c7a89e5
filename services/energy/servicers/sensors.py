from __future__ import annotations

import time

from banhammer.energy.v1 import sensor_pb2, sensor_pb2_grpc
from services.runtime import DomainError
from services.runtime.interceptors import status_for

from ..sensor_query import AGGREGATES, TAGS, Filter, check_filter, check_range
from ..validation import Violations
from . import convert
from .auth import Auth


def _filter(pb: sensor_pb2.ReadingFilter) -> Filter:
    return Filter(list(pb.building_ids), list(pb.sensor_types), list(pb.floors), list(pb.rooms))


def _range(request, v: Violations) -> tuple[int, int]:
    tr = request.time_range
    start = tr.start_time.ToNanoseconds() if request.HasField("time_range") and tr.HasField("start_time") else None
    end = tr.end_time.ToNanoseconds() if tr.HasField("end_time") else None
    return check_range(v, start, end, time.time_ns())


def _count(request) -> int:
    return len(request.readings) + sum(len(s.values) for s in request.series)


class SensorServicer(sensor_pb2_grpc.SensorServiceServicer):
    def __init__(self, writes, queries, auth: Auth) -> None:
        self.writes, self.queries, self.auth = writes, queries, auth

    async def WriteReadings(self, request, context):
        await self.auth.feed(context)
        spooled = await self.writes.write(convert.readings_in(request.readings), series=convert.series_in(request.series))
        return sensor_pb2.WriteReadingsResponse(accepted_count=_count(request), spooled=spooled)

    async def StreamReadings(self, request_iterator, context):
        await self.auth.feed(context)
        async for request in request_iterator:
            try:
                spooled = await self.writes.write(convert.readings_in(request.readings),
                                                  series=convert.series_in(request.series))
            except DomainError as exc:  # the batch's error travels in its ack; the stream goes on
                yield sensor_pb2.StreamReadingsResponse(sequence=request.sequence, error=status_for(exc))
                continue
            yield sensor_pb2.StreamReadingsResponse(sequence=request.sequence, accepted_count=_count(request),
                                                    spooled=spooled)

    async def QueryReadings(self, request, context):
        await self.auth.user(context)
        v = Violations()
        start, end = _range(request, v)
        window_ns = request.window.ToNanoseconds()
        if window_ns % 10**9 or not 1 <= window_ns // 10**9 <= 86400:
            v.add("window", "must be whole seconds, 1 s..1 day")
        if request.aggregate not in AGGREGATES:
            v.add("aggregate", "must be MEAN, MIN, MAX or LAST")
        if len(request.group_by) > 4:
            v.add("group_by", "at most 4 tags")
        if len(set(request.group_by)) != len(request.group_by):
            v.add("group_by", "must not repeat a tag")
        for i, tag in enumerate(request.group_by):
            if tag not in TAGS:
                v.add(f"group_by[{i}]", "must be a known tag")
        f = _filter(request.filter)
        check_filter(v, f)
        v.raise_if_any()
        series = await self.queries.aggregate(start, end, window_ns // 10**9, request.aggregate,
                                              list(request.group_by), f)
        return sensor_pb2.QueryReadingsResponse(series=[
            sensor_pb2.ReadingSeries(tags=s.tags, points=[
                sensor_pb2.AggregatePoint(time=convert.ts_ns(t), value=value, count=n) for t, value, n in s.points])
            for s in series])

    async def ExportReadingsCsv(self, request, context):
        await self.auth.user(context)
        v = Violations()
        start, end = _range(request, v)
        f = _filter(request.filter)
        check_filter(v, f)
        v.raise_if_any()
        async for chunk in self.queries.export_csv(start, end, f):
            yield sensor_pb2.ExportReadingsCsvResponse(chunk=chunk)
