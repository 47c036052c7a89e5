"""Registers the energy servicers (one module per gRPC service under ``servicers/``)."""

from __future__ import annotations

import grpc

from banhammer.energy.v1 import alert_pb2_grpc, building_pb2_grpc, dashboard_pb2_grpc, forecast_pb2_grpc
from banhammer.energy.v1 import sensor_pb2_grpc, usage_pb2_grpc, user_pb2_grpc

from .servicers.alerts import AlertServicer
from .servicers.auth import Auth
from .servicers.buildings import BuildingServicer
from .servicers.sensors import SensorServicer
from .servicers.usage import UsageServicer
from .servicers.users import UserServicer
from .servicers.views import DashboardServicer, ForecastServicer

PACKAGE = "banhammer.energy.v1."


def register(server: grpc.aio.Server, energy) -> list[str]:
    """Add every energy servicer to ``server``; returns the full service names."""
    conf = energy.conf
    auth = Auth(energy.sessions, conf.require_auth)
    forecasts = ForecastServicer(energy.forecasts, energy.sessions, conf.forecast_cache_seconds, auth)
    servicers = [
        (user_pb2_grpc.add_UserServiceServicer_to_server, UserServicer(energy.users, auth), "UserService"),
        (building_pb2_grpc.add_BuildingServiceServicer_to_server, BuildingServicer(energy.buildings, auth),
         "BuildingService"),
        (usage_pb2_grpc.add_EnergyUsageServiceServicer_to_server, UsageServicer(energy.usage, auth),
         "EnergyUsageService"),
        (sensor_pb2_grpc.add_SensorServiceServicer_to_server,
         SensorServicer(energy.sensor_writes, energy.sensor_queries, auth), "SensorService"),
        (alert_pb2_grpc.add_AlertServiceServicer_to_server, AlertServicer(energy.alerts, auth), "AlertService"),
        (dashboard_pb2_grpc.add_DashboardServiceServicer_to_server,
         DashboardServicer(energy.dashboard, energy.building_store, forecasts, energy.sessions,
                           conf.dashboard_cache_seconds, conf.building_list_cache_seconds, auth), "DashboardService"),
        (forecast_pb2_grpc.add_ForecastServiceServicer_to_server, forecasts, "ForecastService"),
    ]
    for add, servicer, _ in servicers:
        add(servicer, server)
    return [PACKAGE + name for *_, name in servicers]
