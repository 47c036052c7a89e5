"""gRPC servicers for the query service: protobuf in, domain calls, protobuf out.

Skeleton: every RPC answers UNIMPLEMENTED until its issue lands.
"""

import grpc

from banhammer.query.v1 import query_pb2_grpc


def register(server: grpc.aio.Server, domain: object) -> list[str]:
    """Add every query servicer to ``server``; returns the full service names."""
    names = []
    query_pb2_grpc.add_QueryServiceServicer_to_server(query_pb2_grpc.QueryServiceServicer(), server)
    names.append("banhammer.query.v1.QueryService")
    return names
