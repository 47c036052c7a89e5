"""gRPC servicer for the query service: protobuf in, domain call, protobuf out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from banhammer.query.v1 import query_pb2_grpc

from . import requests, responses
from .deadline import Deadline

if TYPE_CHECKING:
    from .service import Query

SERVICE_NAME = "banhammer.query.v1.QueryService"


def _deadline(context: grpc.aio.ServicerContext) -> Deadline:
    return Deadline.after(context.time_remaining())


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    def __init__(self, query: Query) -> None:
        self.q = query

    async def GetStatsOverview(self, request, context):
        return responses.overview(await self.q.stats.overview(_deadline(context)))

    async def GetTopPlayers(self, request, context):
        query = requests.top_players(request)
        return responses.top_players(await self.q.stats.top_players(query, _deadline(context)))

    async def GetHourlyLoad(self, request, context):
        hours = requests.hourly_hours(request)
        return responses.hourly_load(await self.q.stats.hourly_load(hours, _deadline(context)))

    async def GetPlayer(self, request, context):
        query = requests.player(request)
        return responses.player(await self.q.players.get(query, _deadline(context)))

    async def ListPlayerActions(self, request, context):
        query = requests.player_actions(request)
        return responses.player_actions(await self.q.players.actions(query, _deadline(context)), query.player_id)

    async def ListViolations(self, request, context):
        query = requests.violations(request)
        return responses.violations(await self.q.violations.list(query, _deadline(context)))

    async def GetStorageStats(self, request, context):
        return responses.storage(await self.q.storage.stats(_deadline(context)))


def register(server: grpc.aio.Server, query: Query) -> list[str]:
    """Add the query servicer to ``server``; returns the full service names."""
    query_pb2_grpc.add_QueryServiceServicer_to_server(QueryServicer(query), server)
    return [SERVICE_NAME]
