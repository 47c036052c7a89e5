from __future__ import annotations

from banhammer.energy.v1 import sensor_pb2, sensor_pb2_grpc
from services.runtime import DomainError
from services.runtime.interceptors import status_for

from ..sensor_query import Filter
from . import convert
from .auth import Auth


def _filter(pb: sensor_pb2.ReadingFilter) -> Filter:
    return Filter(list(pb.building_ids), list(pb.sensor_types), list(pb.floors), list(pb.rooms))


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
        series = await self.queries.aggregate(*convert.time_range(request, "time_range"),
                                              convert.present(request, "window"), request.aggregate,
                                              list(request.group_by), _filter(request.filter))
        return sensor_pb2.QueryReadingsResponse(series=[
            sensor_pb2.ReadingSeries(tags=s.tags, points=[
                sensor_pb2.AggregatePoint(time=convert.ts_ns(t), value=value, count=n) for t, value, n in s.points])
            for s in series])

    async def ExportReadingsCsv(self, request, context):
        await self.auth.user(context)
        async for chunk in self.queries.export_csv(*convert.time_range(request, "time_range"),
                                                   _filter(request.filter)):
            yield sensor_pb2.ExportReadingsCsvResponse(chunk=chunk)
