"""gRPC servicers for the session service: protobuf in, domain calls, protobuf out.

Skeleton: every RPC answers UNIMPLEMENTED until its issue lands.
"""

import grpc

from banhammer.session.v1 import ban_pb2_grpc
from banhammer.session.v1 import cache_pb2_grpc
from banhammer.session.v1 import notification_pb2_grpc
from banhammer.session.v1 import rate_limit_pb2_grpc
from banhammer.session.v1 import session_pb2_grpc


def register(server: grpc.aio.Server, domain: object) -> list[str]:
    """Add every session servicer to ``server``; returns the full service names."""
    names = []
    session_pb2_grpc.add_SessionServiceServicer_to_server(session_pb2_grpc.SessionServiceServicer(), server)
    names.append("banhammer.session.v1.SessionService")
    ban_pb2_grpc.add_BanServiceServicer_to_server(ban_pb2_grpc.BanServiceServicer(), server)
    names.append("banhammer.session.v1.BanService")
    cache_pb2_grpc.add_CacheServiceServicer_to_server(cache_pb2_grpc.CacheServiceServicer(), server)
    names.append("banhammer.session.v1.CacheService")
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(notification_pb2_grpc.NotificationServiceServicer(), server)
    names.append("banhammer.session.v1.NotificationService")
    rate_limit_pb2_grpc.add_RateLimitServiceServicer_to_server(rate_limit_pb2_grpc.RateLimitServiceServicer(), server)
    names.append("banhammer.session.v1.RateLimitService")
    return names
