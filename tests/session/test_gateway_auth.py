"""The gateway's authorizer as Envoy calls it: ext_authz Check and the rate limit service."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as redis
from envoy_api import ext_authz_pb2 as authz
from envoy_api import ext_authz_pb2_grpc as authz_grpc
from google.protobuf import duration_pb2

from banhammer.session.v1 import ban_pb2, session_pb2
from services.runtime import access, gateway_headers
from services.runtime.access import AccessPolicy
from services.runtime.errors import InvalidArgument
from services.session.gateway import GatewayAuth, RoleLimit
from services.session.store.gateway import GatewayStore

INGEST = "/banhammer.ingest.v1.IngestService/RecordAction"
BAN = "/banhammer.session.v1.BanService/Ban"
OVERVIEW = "/banhammer.query.v1.QueryService/GetStatsOverview"
BUILDINGS = "/banhammer.energy.v1.BuildingService/ListBuildings"  # an energy read


def _check_request(path: str, token: str | None = None, **headers: str) -> authz.CheckRequest:
    request = authz.CheckRequest()
    http = request.attributes.request.http
    http.path, http.method = path, "POST"
    if token is not None:
        http.headers["authorization"] = f"Bearer {token}"
    http.headers.update(headers)
    return request


@pytest.fixture
def authorizer(channel):
    return authz_grpc.AuthorizationStub(channel)


async def _login(sessions, subject: str, role: str) -> str:
    created = await sessions.CreateSession(session_pb2.CreateSessionRequest(
        subject=subject, role=role, ttl=duration_pb2.Duration(seconds=3600)))
    return created.token


def _headers(response: authz.CheckResponse) -> dict[str, str]:
    return {h.header.key: h.header.value for h in response.ok_response.headers}


def test_every_rpc_has_a_policy_and_admin_rpcs_are_marked():
    methods = access.load().methods
    assert len(methods) >= 60
    assert methods[BAN] == access.ADMIN and methods["/banhammer.session.v1.BanService/Unban"] == access.ADMIN
    assert methods["/banhammer.energy.v1.UserService/SetUserRole"] == access.ENERGY_ADMIN
    assert methods[INGEST] == access.SERVICE and methods[OVERVIEW] == access.SERVICE
    assert methods[BUILDINGS] == access.ENERGY_USER


async def test_health_is_public_and_identity_headers_cannot_be_forged(authorizer):
    response = await authorizer.Check(_check_request("/grpc.health.v1.Health/Check", **{"x-banhammer-subject": "evil"}))
    assert response.status.code == 0
    assert set(response.ok_response.headers_to_remove) >= {*gateway_headers.ALL, "authorization"}


async def test_no_or_bad_credentials_are_unauthenticated(authorizer):
    for request in (_check_request(INGEST), _check_request(INGEST, token="not-a-real-token-" + "x" * 30)):
        response = await authorizer.Check(request)
        assert response.status.code == 16  # UNAUTHENTICATED
        assert response.denied_response.status.code == 401


async def test_roles_gate_admin_rpcs(authorizer, sessions):
    game = await _login(sessions, "gw-game-server-1", "service")
    admin = await _login(sessions, "gw-admin-1", "admin")
    user = await _login(sessions, "gw-user-1", "energy_user")
    ok = await authorizer.Check(_check_request(INGEST, game))
    assert ok.status.code == 0
    headers = _headers(ok)
    assert headers.pop(gateway_headers.SESSION)  # the session id, so a revocation can end its streams
    assert headers == {gateway_headers.SUBJECT: "gw-game-server-1", gateway_headers.ROLE: "service"}
    assert "authorization" in ok.ok_response.headers_to_remove  # tokens never reach the services
    assert (await authorizer.Check(_check_request(BAN, game))).status.code == 7  # PERMISSION_DENIED
    assert (await authorizer.Check(_check_request(BAN, admin))).status.code == 0
    assert (await authorizer.Check(_check_request(BUILDINGS, user))).status.code == 0
    assert (await authorizer.Check(_check_request(OVERVIEW, user))).status.code == 7  # not BanHammer's scope
    assert (await authorizer.Check(_check_request(INGEST, user))).status.code == 7
    unknown = await authorizer.Check(_check_request("/banhammer.ingest.v1.IngestService/DropTables", admin))
    assert unknown.status.code == 12 and unknown.denied_response.status.code == 404  # UNIMPLEMENTED


async def test_revocation_and_bans_take_effect_on_the_next_call(authorizer, sessions, bans):
    token = await _login(sessions, "gw-player-7", "service")
    assert (await authorizer.Check(_check_request(OVERVIEW, token))).status.code == 0
    await bans.Ban(ban_pb2.BanRequest(subject="gw-player-7", reason="aimbot",
                                      admin_source=ban_pb2.AdminSource(admin="gw-admin"), permanent=True))
    assert (await authorizer.Check(_check_request(OVERVIEW, token))).status.code == 16
    other = await _login(sessions, "gw-user-9", "service")
    await sessions.RevokeSession(session_pb2.RevokeSessionRequest(token=other))
    assert (await authorizer.Check(_check_request(OVERVIEW, other))).status.code == 16


async def test_rate_limit_per_caller_with_retry_hint(authorizer, sessions):
    # The fixture gives energy users 20 calls a minute: concurrent calls from one caller get exactly 20 through.
    token = await _login(sessions, "gw-rl-user", "energy_user")
    results = await asyncio.gather(*(authorizer.Check(_check_request(BUILDINGS, token)) for _ in range(40)))
    over = [r for r in results if r.status.code != 0]
    assert len(results) - len(over) == 20
    assert {(r.status.code, r.denied_response.status.code) for r in over} == {(8, 429)}  # RESOURCE_EXHAUSTED
    headers = {h.header.key: h.header.value for h in over[0].denied_response.headers}
    assert int(headers["retry-after"]) >= 1 and int(headers["grpc-retry-pushback-ms"]) > 0
    assert headers["grpc-status"] == "8"  # what gRPC callers see instead of Envoy's 429 → UNAVAILABLE
    # Another caller has its own budget.
    other = await _login(sessions, "gw-rl-other", "energy_user")
    assert (await authorizer.Check(_check_request(BUILDINGS, other))).status.code == 0


async def test_a_check_is_one_redis_round_trip(authorizer, sessions, session_redis_url):
    token = await _login(sessions, "gw-one-trip", "service")
    assert (await authorizer.Check(_check_request(INGEST, token))).status.code == 0  # script now loaded
    watched, marker = redis.from_url(session_redis_url), redis.from_url(session_redis_url)
    await marker.ping()  # connected before the watch starts
    try:
        async with watched.monitor() as monitor:
            assert (await authorizer.Check(_check_request(INGEST, token))).status.code == 0
            await marker.echo("end-of-check")  # MONITOR is ordered: everything before it is in
            seen = []
            while "end-of-check" not in (info := await monitor.next_command())["command"]:
                seen.append((info["client_type"], info["command"]))
    finally:
        await watched.aclose()
        await marker.aclose()
    # Health probes PING on their own schedule; "lua" marks the script's own calls.
    sent = [c for kind, c in seen if kind != "lua" and c.split()[0].upper() != "PING"]
    assert len(sent) == 1 and sent[0].upper().startswith("EVALSHA"), seen
    assert any(c.startswith("GET ban:active:gw-one-trip") for kind, c in seen if kind == "lua"), seen


async def test_a_banned_subject_is_refused_even_if_a_session_survived(authorizer, sessions, r):
    token = await _login(sessions, "gw-lingering", "service")
    # Ban normally revokes sessions in the same script; store a ban behind its back to prove
    # the gateway checks it anyway.
    await r.set("ban:active:gw-lingering", '{"permanent":true,"expire_ms":0}')
    try:
        assert (await authorizer.Check(_check_request(INGEST, token))).status.code == 16
    finally:
        await r.delete("ban:active:gw-lingering")
    assert (await authorizer.Check(_check_request(INGEST, token))).status.code == 0


async def test_refused_calls_consume_no_rate_limit(authorizer, sessions):
    token = await _login(sessions, "gw-rl-denied", "energy_user")
    for _ in range(5):  # an energy user may not call ingest; these must not use up the 20-call budget
        assert (await authorizer.Check(_check_request(INGEST, token))).status.code == 7
    codes = [(await authorizer.Check(_check_request(BUILDINGS, token))).status.code for _ in range(21)]
    assert codes == [0] * 20 + [8]


async def test_a_role_limit_consume_would_reject_fails_each_call(service, sessions, clock):
    _, svc = service
    token = await _login(sessions, "gw-bad-limit", "energy_user")
    policy = AccessPolicy({BUILDINGS: access.ENERGY_USER}, {access.ENERGY_USER: frozenset({"energy_user"})})
    auth = GatewayAuth(GatewayStore(svc.redis), clock, {"energy_user": RoleLimit(0, 1000)}, policy=policy)
    for _ in range(2):
        with pytest.raises(InvalidArgument, match="limit"):
            await auth.admit(BUILDINGS, f"Bearer {token}")


async def test_create_session_never_mints_a_role_above_the_callers(sessions):
    """Only admins may call CreateSession through the gateway; should that ever widen, the caller's
    role (the gateway's header) still bounds the role it may mint."""
    as_service = ((gateway_headers.SUBJECT, "gw-minter"), (gateway_headers.ROLE, "service"))
    for role in ("admin", "energy_admin", "energy_user"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.CreateSession(session_pb2.CreateSessionRequest(subject="gw-minted", role=role),
                                         metadata=as_service)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, role
    for role in ("service", "game_server"):  # its own role, and a role that holds nothing
        made = await sessions.CreateSession(session_pb2.CreateSessionRequest(subject="gw-minted", role=role),
                                            metadata=as_service)
        assert made.session.role == role
    as_admin = ((gateway_headers.SUBJECT, "gw-admin-2"), (gateway_headers.ROLE, "admin"))
    made = await sessions.CreateSession(session_pb2.CreateSessionRequest(subject="gw-minted", role="admin"),
                                        metadata=as_admin)
    assert made.session.role == "admin"
