"""gRPC servicers for the energy service: protobuf in, domain calls, protobuf out.

Skeleton: every RPC answers UNIMPLEMENTED until its issue lands.
"""

import grpc

from banhammer.energy.v1 import alert_pb2_grpc
from banhammer.energy.v1 import building_pb2_grpc
from banhammer.energy.v1 import dashboard_pb2_grpc
from banhammer.energy.v1 import forecast_pb2_grpc
from banhammer.energy.v1 import sensor_pb2_grpc
from banhammer.energy.v1 import usage_pb2_grpc
from banhammer.energy.v1 import user_pb2_grpc


def register(server: grpc.aio.Server, domain: object) -> list[str]:
    """Add every energy servicer to ``server``; returns the full service names."""
    names = []
    user_pb2_grpc.add_UserServiceServicer_to_server(user_pb2_grpc.UserServiceServicer(), server)
    names.append("banhammer.energy.v1.UserService")
    building_pb2_grpc.add_BuildingServiceServicer_to_server(building_pb2_grpc.BuildingServiceServicer(), server)
    names.append("banhammer.energy.v1.BuildingService")
    usage_pb2_grpc.add_EnergyUsageServiceServicer_to_server(usage_pb2_grpc.EnergyUsageServiceServicer(), server)
    names.append("banhammer.energy.v1.EnergyUsageService")
    sensor_pb2_grpc.add_SensorServiceServicer_to_server(sensor_pb2_grpc.SensorServiceServicer(), server)
    names.append("banhammer.energy.v1.SensorService")
    alert_pb2_grpc.add_AlertServiceServicer_to_server(alert_pb2_grpc.AlertServiceServicer(), server)
    names.append("banhammer.energy.v1.AlertService")
    dashboard_pb2_grpc.add_DashboardServiceServicer_to_server(dashboard_pb2_grpc.DashboardServiceServicer(), server)
    names.append("banhammer.energy.v1.DashboardService")
    forecast_pb2_grpc.add_ForecastServiceServicer_to_server(forecast_pb2_grpc.ForecastServiceServicer(), server)
    names.append("banhammer.energy.v1.ForecastService")
    return names
