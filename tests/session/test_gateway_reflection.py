"""The session process answers two reflections: its own (what it serves) and, at the path the
gateway rewrites reflection to, the whole suite's (services/runtime/reflection.py)."""

from __future__ import annotations

from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy.envoy.render import UPSTREAMS

GATEWAY_PATH = "/banhammer.gateway.grpc.reflection.{}.ServerReflection/ServerReflectionInfo"


async def _list(call) -> set[str]:
    stream = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return {s.name async for answer in stream for s in answer.list_services_response.service}


def _gateway_call(channel, version: str):
    return channel.stream_stream(GATEWAY_PATH.format(version),
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)


async def test_own_reflection_lists_only_what_this_process_serves(channel):
    own = await _list(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo)
    assert "banhammer.session.v1.BanService" in own
    assert not any(name.startswith(("banhammer.ingest.", "banhammer.query.", "banhammer.energy.")) for name in own)


async def test_the_gateway_reflection_lists_every_service_of_the_suite(channel):
    suite = {name for u in UPSTREAMS for name in u.services}
    for version in ("v1", "v1alpha"):
        listed = await _list(_gateway_call(channel, version))
        assert listed == suite | {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}, version
