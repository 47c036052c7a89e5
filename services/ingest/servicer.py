"""gRPC servicers for the ingest service: protobuf in, domain calls, protobuf out.

Skeleton: every RPC answers UNIMPLEMENTED until its issue lands.
"""

import grpc

from banhammer.ingest.v1 import ingest_pb2_grpc


def register(server: grpc.aio.Server, domain: object) -> list[str]:
    """Add every ingest servicer to ``server``; returns the full service names."""
    names = []
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(ingest_pb2_grpc.IngestServiceServicer(), server)
    names.append("banhammer.ingest.v1.IngestService")
    return names
