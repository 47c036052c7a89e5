"""Server reflection through the real Envoy gateway: what `grpcurl localhost:8000 list` and
`grpcurl localhost:8000 describe <service>` do, with grpcio-reflection as the client.

Without the routing header the gateway sends reflection to the session service, which answers it
for every service in the contracts (services/runtime/reflection.py); with authentication on only
admins may use it.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy.envoy.render import UPSTREAMS
from tests.harness import auth_metadata
from tests.harness.health import check_health, gateway_metadata
from tests.harness.paths import TARGETS
from tests.harness.processes import wait_until

SUITE = {name for u in UPSTREAMS for name in u.services}
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def _ask(channel, requests: list[reflection_pb2.ServerReflectionRequest], metadata=(), path: str | None = None):
    """One reflection stream (as grpcurl opens), the answers in order."""
    if path is None:
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
    else:  # v1 and v1alpha messages are the same on the wire
        call = channel.stream_stream(path, request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    return list(call(iter(requests), metadata=metadata, timeout=10))


def _list(channel, metadata=(), path=None) -> set[str]:
    (answer,) = _ask(channel, [reflection_pb2.ServerReflectionRequest(list_services="")], metadata, path)
    return {s.name for s in answer.list_services_response.service}


def _describe(channel, services: set[str], metadata=()) -> descriptor_pool.DescriptorPool:
    """What `grpcurl describe` does: the files declaring each service, with their dependencies,
    loaded into a fresh pool (so nothing comes from this process's own generated modules)."""
    answers = _ask(channel, [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in sorted(services)],
                   metadata)
    files = {}
    for answer in answers:
        assert answer.HasField("file_descriptor_response"), answer.error_response
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = proto
    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(name: str) -> None:
        if name not in added:
            for dep in files[name].dependency:
                add(dep)
            pool.Add(files[name])
            added.add(name)
    for name in files:
        add(name)
    return pool


def test_list_through_the_gateway_shows_every_service_of_the_suite(gateway, gateway_tokens):
    admin = auth_metadata(gateway_tokens["admin"])
    with grpc.insecure_channel(gateway.addr) as ch:
        listed = _list(ch, admin)
        assert SUITE | {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} == listed
        assert _list(ch, admin, path=V1) == listed  # grpcurl asks v1 first
        pool = _describe(ch, SUITE, admin)
    for name in SUITE:  # every RPC described, with its request and response types
        service = pool.FindServiceByName(name)
        assert service.methods and all(m.input_type.fields is not None for m in service.methods), name
    ingest = pool.FindServiceByName("banhammer.ingest.v1.IngestService")
    assert ingest.methods_by_name["StreamActions"].input_type.full_name == "banhammer.ingest.v1.StreamActionsRequest"


@pytest.mark.parametrize("role", [None, "service", "energy_admin", "energy_user"])
def test_only_admins_may_reflect_when_authentication_is_on(gateway, gateway_tokens, role):
    metadata = auth_metadata(gateway_tokens[role]) if role else ()
    with grpc.insecure_channel(gateway.addr) as ch:
        for path in (None, V1):
            with pytest.raises(grpc.RpcError) as err:
                _list(ch, metadata, path)
            expected = grpc.StatusCode.UNAUTHENTICATED if role is None else grpc.StatusCode.PERMISSION_DENIED
            assert err.value.code() == expected


def test_the_routing_header_still_reaches_one_services_own_reflection(gateway, gateway_tokens):
    with grpc.insecure_channel(gateway.addr) as ch:
        own = _list(ch, (*auth_metadata(gateway_tokens["admin"]), *gateway_metadata("ingest")))
    assert "banhammer.ingest.v1.IngestService" in own


def test_without_authentication_anyone_may_list(suite, envoy_factory):
    gw = envoy_factory({t: suite.addr for t in TARGETS}, auth=False)
    wait_until(lambda: check_health(gw.addr, "", metadata=gateway_metadata("session")) == "SERVING", 30,
               "session SERVING through Envoy", gw.proc)
    with grpc.insecure_channel(gw.addr) as ch:
        assert SUITE <= _list(ch)
