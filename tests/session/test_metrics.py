"""The session service's own metrics: gateway decisions by result, active sessions and bans (read
from the process's registry, as a scrape of its /metrics would)."""

from __future__ import annotations

from envoy_api import ext_authz_pb2 as authz
from envoy_api import ext_authz_pb2_grpc as authz_grpc
from google.protobuf import duration_pb2
from prometheus_client import REGISTRY

from banhammer.session.v1 import ban_pb2 as pb
from banhammer.session.v1 import session_pb2 as spb

from .helpers import dur, unique

INGEST = "/banhammer.ingest.v1.IngestService/RecordAction"
BAN = "/banhammer.session.v1.BanService/Ban"


def _decisions(result: str) -> float:
    return REGISTRY.get_sample_value("banhammer_gateway_decisions_total", {"result": result}) or 0.0


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name)


def _check(path: str, token: str | None) -> authz.CheckRequest:
    request = authz.CheckRequest()
    request.attributes.request.http.path, request.attributes.request.http.method = path, "POST"
    if token is not None:
        request.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    return request


async def test_gateway_decisions_are_counted_by_result(channel, sessions):
    authorizer = authz_grpc.AuthorizationStub(channel)
    service = (await sessions.CreateSession(spb.CreateSessionRequest(
        subject=unique("game"), role="service", ttl=duration_pb2.Duration(seconds=3600)))).token
    before = {r: _decisions(r) for r in ("allowed", "unauthenticated", "denied", "unknown_path")}
    await authorizer.Check(_check(INGEST, service))
    await authorizer.Check(_check(INGEST, service))
    await authorizer.Check(_check(INGEST, None))
    await authorizer.Check(_check(BAN, service))  # a service may not ban
    await authorizer.Check(_check("/nowhere.v1.Nothing/Nope", service))
    after = {r: _decisions(r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {"allowed": 2, "unauthenticated": 1, "denied": 1,
                                                          "unknown_path": 1}


async def test_active_sessions_and_bans_follow_the_sweep(service, sessions, bans):
    runtime, session = service
    await session.sweep()
    before = _gauge("banhammer_session_active_sessions"), _gauge("banhammer_session_active_bans")
    for _ in range(2):
        await sessions.CreateSession(spb.CreateSessionRequest(subject=unique("player"), role="user",
                                                              ttl=dur(3600)))
    banned = unique("player")
    await bans.Ban(pb.BanRequest(subject=banned, reason="metrics test", duration=dur(600),
                                 admin_source=pb.AdminSource(admin="gm:alice")))
    await session.sweep()
    assert (_gauge("banhammer_session_active_sessions") - before[0],
            _gauge("banhammer_session_active_bans") - before[1]) == (2, 1)
    # No clock advance here: the shared manual clock would end other tests' timed bans too.
    assert (await bans.Unban(pb.UnbanRequest(subject=banned, unbanned_by="gm:alice", reason="test"))).unbanned
    await session.sweep()
    assert _gauge("banhammer_session_active_bans") - before[1] == 0
    assert _gauge("banhammer_session_active_sessions") - before[0] == 2
