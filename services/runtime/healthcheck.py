"""``python -m services.runtime.healthcheck --addr host:port [--service NAME]``: exit 0 if SERVING.

Used by container HEALTHCHECKs and the local stack: a real gRPC health call, not a port probe.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .cli import CommandParser


def check(addr: str, service: str = "", timeout: float = 2.0) -> str:
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return f"{exc.code().name}"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


if __name__ == "__main__":
    parser = CommandParser(prog="python -m services.runtime.healthcheck")
    parser.add_argument("--addr", required=True)
    parser.add_argument("--service", default="")
    args = parser.parse_args()
    status = check(args.addr, args.service)
    print(status)
    sys.exit(0 if status == "SERVING" else 1)
