"""Authentication, roles, revocation and per-caller limits at the real Envoy gateway.

Every call here goes through Envoy with authentication on (the harness default), as in compose and
Kubernetes: the session service answers Envoy's ext_authz and rate-limit calls.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest

from banhammer.energy.v1 import building_pb2, building_pb2_grpc
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2, query_pb2_grpc
from banhammer.session.v1 import (ban_pb2, ban_pb2_grpc, notification_pb2, notification_pb2_grpc, session_pb2,
                                  session_pb2_grpc)
from tests.harness import auth_metadata
from tests.harness.rpcs import call, contract_rpcs


def _json(gateway, path: str, body: dict | None, token: str | None) -> tuple[int, dict, bytes]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(gateway.url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# One gRPC stub call and one JSON call per service: (token role, grpc call, JSON method path, body).
def _ingest(ch, md):
    return ingest_pb2_grpc.IngestServiceStub(ch).RecordAction(ingest_pb2.RecordActionRequest(
        action=common_pb2.PlayerAction(player_id="auth-p1", action_type="login", value=1.0)), metadata=md, timeout=10)


def _query(ch, md):
    return query_pb2_grpc.QueryServiceStub(ch).GetStatsOverview(query_pb2.GetStatsOverviewRequest(), metadata=md, timeout=10)


def _session(ch, md):
    return ban_pb2_grpc.BanServiceStub(ch).IsBanned(ban_pb2.IsBannedRequest(subject="auth-p1"), metadata=md, timeout=10)


def _energy(ch, md):
    return building_pb2_grpc.BuildingServiceStub(ch).ListBuildings(building_pb2.ListBuildingsRequest(), metadata=md, timeout=10)


CASES = {
    "ingest": ("service", _ingest, "/api/ts/action", {"player_id": "auth-p2", "action_type": "login", "value": 1.0}),
    "query": ("service", _query, "/api/ts/stats/overview", None),
    "session": ("service", _session, "/banhammer.session.v1.BanService/IsBanned", {"subject": "auth-p1"}),
    "energy": ("energy_user", _energy, "/banhammer.energy.v1.BuildingService/ListBuildings", {}),
}


@pytest.mark.parametrize("service", list(CASES))
def test_grpc_and_json_calls_need_credentials(gateway, gateway_tokens, service):
    role, call, path, body = CASES[service]
    token = gateway_tokens[role]
    with grpc.insecure_channel(gateway.addr) as channel:
        call(channel, auth_metadata(token))  # succeeds with credentials
        with pytest.raises(grpc.RpcError) as err:
            call(channel, ())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            call(channel, (("authorization", "Bearer forged-token-0000000000000000000000000000"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    status, _, payload = _json(gateway, path, body, token)
    assert status == 200, payload
    json.loads(payload)
    status, headers, _ = _json(gateway, path, body, None)
    assert status == 401


def test_admin_rpcs_need_the_admin_role(gateway, gateway_tokens):
    request = ban_pb2.BanRequest(subject="auth-victim", reason="test", admin_source=ban_pb2.AdminSource(admin="ops"),
                                 permanent=True)
    with grpc.insecure_channel(gateway.addr) as channel:
        bans = ban_pb2_grpc.BanServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            bans.Ban(request, metadata=auth_metadata(gateway_tokens["service"]), timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert bans.Ban(request, metadata=auth_metadata(gateway_tokens["admin"]), timeout=10).ban.subject == "auth-victim"


def test_revocation_and_bans_take_effect_on_the_next_call(gateway, gateway_tokens, suite):
    with grpc.insecure_channel(suite.addr) as direct:
        sessions = session_pb2_grpc.SessionServiceStub(direct)
        player = sessions.CreateSession(session_pb2.CreateSessionRequest(subject="auth-player", role="service")).token
        other = sessions.CreateSession(session_pb2.CreateSessionRequest(subject="auth-other", role="service")).token
    with grpc.insecure_channel(gateway.addr) as channel:
        _session(channel, auth_metadata(player))
        _session(channel, auth_metadata(other))
        # An admin bans the player through the gateway: the player's very next call is refused.
        ban_pb2_grpc.BanServiceStub(channel).Ban(ban_pb2.BanRequest(
            subject="auth-player", reason="speed hack", admin_source=ban_pb2.AdminSource(admin="ops"), permanent=True),
            metadata=auth_metadata(gateway_tokens["admin"]), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            _session(channel, auth_metadata(player))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Revoking a session: likewise on the very next call.
        session_pb2_grpc.SessionServiceStub(channel).RevokeSession(
            session_pb2.RevokeSessionRequest(token=other), metadata=auth_metadata(gateway_tokens["service"]), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            _session(channel, auth_metadata(other))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _open_stream(channel, token: str):
    """A game server's StreamActions through the gateway: one batch now, then the stream stays open."""
    done = threading.Event()

    def requests():
        yield ingest_pb2.StreamActionsRequest(sequence=1, actions=[
            common_pb2.PlayerAction(player_id="stream-p1", action_type="login", value=1.0)])
        done.wait(30)

    call = ingest_pb2_grpc.IngestServiceStub(channel).StreamActions(requests(), metadata=auth_metadata(token),
                                                                    timeout=30)
    return call, done


@pytest.mark.parametrize("how", ["revoke", "ban"])
def test_a_revoked_callers_open_stream_ends_unauthenticated(gateway, gateway_tokens, suite, how):
    subject = f"stream-game-server-{how}"
    with grpc.insecure_channel(suite.addr) as direct:
        sessions = session_pb2_grpc.SessionServiceStub(direct)
        token = sessions.CreateSession(session_pb2.CreateSessionRequest(subject=subject, role="service")).token
        bystander = sessions.CreateSession(session_pb2.CreateSessionRequest(
            subject=f"{subject}-other", role="service")).token
        with grpc.insecure_channel(gateway.addr) as channel:
            call, done = _open_stream(channel, token)
            other, other_done = _open_stream(channel, bystander)
            try:
                assert next(call).accepted_count == 1 and next(other).accepted_count == 1  # admitted, streaming
                if how == "revoke":
                    sessions.RevokeSession(session_pb2.RevokeSessionRequest(token=token), timeout=10)
                else:
                    ban_pb2_grpc.BanServiceStub(direct).Ban(ban_pb2.BanRequest(
                        subject=subject, reason="stream test", admin_source=ban_pb2.AdminSource(admin="ops"),
                        permanent=True), timeout=10)
                with pytest.raises(grpc.RpcError) as err:
                    next(call)  # the open stream ends, without the client sending anything
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "revoked" in err.value.details()
                other_done.set()  # the other caller's stream was untouched: it ends normally
                assert list(other) == []
            finally:
                done.set()
                other_done.set()


@pytest.mark.parametrize("role", ["energy_user", "energy_admin", "user"])
def test_the_revocations_channel_is_not_for_users(gateway, gateway_tokens, role):
    with grpc.insecure_channel(gateway.addr) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        stream = stub.Subscribe(notification_pb2.SubscribeRequest(channels=["session.revoked"]),
                                metadata=auth_metadata(gateway_tokens[role]), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            next(stream)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:
            stub.Publish(notification_pb2.PublishRequest(channel="session.revoked", type="session_revoked",
                                                         attributes={"subject": "e2e-admin"}),
                         metadata=auth_metadata(gateway_tokens["admin"]), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_per_caller_rate_limit_is_resource_exhausted_with_retry_hint(gateway, suite):
    # The harness gives role "user" 5 calls a minute (GATEWAY_RATE_LIMITS); it may read energy data.
    with grpc.insecure_channel(suite.addr) as direct:
        sessions = session_pb2_grpc.SessionServiceStub(direct)
        token = sessions.CreateSession(session_pb2.CreateSessionRequest(subject="auth-rl-user", role="user")).token
        http_token = sessions.CreateSession(session_pb2.CreateSessionRequest(subject="auth-rl-http", role="user")).token
    with grpc.insecure_channel(gateway.addr) as channel:
        for _ in range(5):
            _energy(channel, auth_metadata(token))
        with pytest.raises(grpc.RpcError) as err:
            _energy(channel, auth_metadata(token))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(err.value.trailing_metadata() or ())
    assert int(trailers["retry-after"]) >= 1
    statuses = [_json(gateway, "/banhammer.energy.v1.BuildingService/ListBuildings", {}, http_token) for _ in range(6)]
    assert [s for s, _, _ in statuses] == [200] * 5 + [429]
    assert int(statuses[-1][1]["retry-after"]) >= 1


def test_every_rpc_is_routed_to_its_own_service(gateway, gateway_tokens):
    """Each RPC in the contracts reaches an upstream that implements it, on the right cluster."""
    md = auth_metadata(gateway_tokens["admin"])
    rpcs = contract_rpcs()
    assert len(rpcs) >= 60
    with grpc.insecure_channel(gateway.addr) as channel:
        unimplemented = [r.path for r in rpcs if call(channel, r, b"", md, timeout=5) == grpc.StatusCode.UNIMPLEMENTED]
    assert unimplemented == []
    expected = {r.path: r.package.split(".")[1] for r in rpcs}
    deadline = time.monotonic() + 15
    while True:
        seen = {}
        for line in gateway.log().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("path") in expected and entry.get("upstream_cluster") not in (None, "-", ""):
                    seen[entry["path"]] = entry["upstream_cluster"]
        if len(seen) == len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == expected
