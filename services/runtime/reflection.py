"""Server reflection for the whole suite, answered through the gateway by one process.

Each process's own reflection (``grpc.reflection.v1alpha``, set up in server.py) lists what that
process serves. Behind the gateway a client sees every service at one address, but Envoy cannot
merge reflection from several backends, so the gateway rewrites ``/grpc.reflection.`` to
``/banhammer.gateway.grpc.reflection.`` and routes it to the session service, which serves there a
reflection of every service in the contracts (all generated modules under ``banhammer``, imported
here) plus health. ``grpcurl localhost:8000 list`` then shows the suite, while a process asked
directly still describes only itself.

Who may use it is the gateway's business: admins only when authentication is on
(``services/session/gateway.py`` ADMIN_PREFIXES), never over mTLS (role ``service``).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health
from grpc_reflection.v1alpha import _async as reflection_async
from grpc_reflection.v1alpha import reflection_pb2

#: The gateway's rewrite of the standard reflection path prefix (deploy/envoy/envoy.tmpl.yaml).
GATEWAY_PREFIX = "banhammer.gateway."
#: Both reflection versions: their messages are the same on the wire (grpcurl asks v1 first).
VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


@functools.cache
def suite_services() -> tuple[str, ...]:
    """Every gRPC service in the contracts (``banhammer.*``), from the generated modules."""
    import banhammer

    names = set()
    for module in pkgutil.walk_packages(banhammer.__path__, "banhammer."):
        if module.name.endswith("_pb2"):
            for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values():
                names.add(service.full_name)
    return tuple(sorted(names))


def gateway_service_names() -> list[str]:
    """The names this reflection serves under (what the gateway's rewrite produces)."""
    return [GATEWAY_PREFIX + name for name in VERSIONS]


def add_gateway_reflection(server: grpc.aio.Server) -> list[str]:
    """Serve the suite's reflection at the gateway's rewritten paths; returns those service names."""
    # v1 is served but listed as v1alpha only: its descriptors are the ones this pool holds.
    listed = [*suite_services(), health.SERVICE_NAME, reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name]
    servicer = reflection_async.ReflectionServicer(listed, pool=descriptor_pool.Default())
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    names = gateway_service_names()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}) for name in names])
    return names
