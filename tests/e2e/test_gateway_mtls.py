"""The gateway's mTLS listener (deploy/envoy/mtls.py) with a real Envoy and the real suite.

Certificates are minted per run with deploy/tls/certs.py's functions: a valid game-server
certificate is admitted as role service with its SPIFFE identity; no certificate, another CA's, an
expired one or one without a banhammer SPIFFE identity is refused at the handshake; no header or
token makes a certificate admin; each identity has its own rate limit.
"""

from __future__ import annotations

import datetime as dt
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from banhammer_client import Client
from tests.harness import auth_metadata, free_port, wait_until
from tests.harness.paths import load_script

certs = load_script("deploy/tls/certs.py", "banhammer_tls_certs")
UPSTREAMS = ("ingest", "query", "session", "energy")
GAME = "spiffe://banhammer/game/eu-1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """The gateway's files (ca.pem, gateway.pem, gateway-key.pem) and client cert/key pairs by name."""
    d = tmp_path_factory.mktemp("tls")
    ca, other_ca = certs.make_ca(), certs.make_ca("someone else's CA")
    ca.write(d, "ca")
    certs.issue(ca, "gateway", dns=("localhost",), ips=("127.0.0.1",), server=True).write(d, "gateway")
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    clients = {
        "game": certs.issue(ca, "eu-1", uris=(GAME,)),
        "game2": certs.issue(ca, "eu-2", uris=("spiffe://banhammer/game/eu-2",)),
        "probe": certs.issue(ca, "probe", uris=("spiffe://banhammer/test/probe",)),  # readiness only
        "other_ca": certs.issue(other_ca, "eu-1", uris=(GAME,)),
        "expired": certs.issue(ca, "eu-1", uris=(GAME,), not_before=long_ago, days=1),
        "no_spiffe": certs.issue(ca, "eu-1", dns=("eu-1.example",)),
        "foreign_spiffe": certs.issue(ca, "eu-1", uris=("spiffe://elsewhere/admin",)),
    }
    for name, issued in clients.items():
        issued.write(d, name)
    return {"dir": d}


def _creds(pki, client: str | None) -> grpc.ChannelCredentials:
    d = pki["dir"]
    ca = (d / "ca.pem").read_bytes()
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(ca, (d / f"{client}-key.pem").read_bytes(), (d / f"{client}.pem").read_bytes())


def _channel(port: int, pki, client: str | None) -> grpc.Channel:
    return grpc.secure_channel(f"127.0.0.1:{port}", _creds(pki, client),
                               options=[("grpc.ssl_target_name_override", "localhost")])


def _is_banned(channel, metadata=()):
    return ban_pb2_grpc.BanServiceStub(channel).IsBanned(ban_pb2.IsBannedRequest(subject="mtls-p1"),
                                                         metadata=metadata, timeout=10)


def _start(envoy_factory, upstreams: dict[str, str], pki, **overrides):
    port = free_port()
    gw = envoy_factory(upstreams, mtls_dir=str(pki["dir"]), mtls_port=port, **overrides)

    def serving() -> bool:
        with _channel(port, pki, "probe") as ch:
            try:
                _is_banned(ch)
                return True
            except grpc.RpcError:
                return False
    wait_until(serving, 30, "IsBanned over mTLS", gw.proc)
    return gw, port


@pytest.fixture(scope="module")
def mtls_gateway(suite, envoy_factory, pki):
    return _start(envoy_factory, {t: suite.addr for t in UPSTREAMS}, pki)


def test_a_valid_certificate_is_admitted_without_a_token(mtls_gateway, pki):
    _, port = mtls_gateway
    with _channel(port, pki, "game") as ch:
        assert _is_banned(ch).banned is False
        out = ban_pb2_grpc.BanServiceStub(ch).CheckBans(ban_pb2.CheckBansRequest(subjects=["a", "b"]), timeout=10)
        assert [r.subject for r in out.results] == ["a", "b"]


@pytest.mark.parametrize("client", [None, "other_ca", "expired", "no_spiffe", "foreign_spiffe"])
def test_a_missing_or_invalid_certificate_is_refused(mtls_gateway, pki, client):
    _, port = mtls_gateway
    with _channel(port, pki, client) as ch, pytest.raises(grpc.RpcError) as err:
        _is_banned(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake fails: no call is made


def test_a_certificate_cannot_claim_admin(mtls_gateway, pki, gateway_tokens):
    _, port = mtls_gateway
    posing = (("x-banhammer-role", "admin"), ("x-banhammer-subject", "gm:root"), *auth_metadata(gateway_tokens["admin"]))
    with _channel(port, pki, "game") as ch:
        stub = ban_pb2_grpc.BanServiceStub(ch)
        for call in (lambda: stub.ListBans(ban_pb2.ListBansRequest(), metadata=posing, timeout=10),
                     lambda: stub.Ban(ban_pb2.BanRequest(subject="victim", reason="x", permanent=True,
                                                         admin_source=ban_pb2.AdminSource(admin="gm")),
                                      metadata=posing, timeout=10)):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert _is_banned(ch, posing).banned is False  # service RPCs still work


def test_a_certificate_may_not_use_reflection(mtls_gateway, pki):
    """Reflection (grpcurl list) is for admins; a certificate is role service."""
    _, port = mtls_gateway
    with _channel(port, pki, "game") as ch, pytest.raises(grpc.RpcError) as err:
        list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


class _Echo(ban_pb2_grpc.BanServiceServicer):
    """A probe upstream: answers IsBanned with the identity headers it received as trailers."""

    def IsBanned(self, request, context):
        seen = dict(context.invocation_metadata())
        context.set_trailing_metadata([(k, seen.get(k, "<absent>")) for k in
                                       ("x-banhammer-subject", "x-banhammer-role", "x-banhammer-session",
                                        "authorization")])
        return ban_pb2.IsBannedResponse()


@pytest.fixture(scope="module")
def echo_upstream():
    server = grpc.server(futures.ThreadPoolExecutor(4))
    ban_pb2_grpc.add_BanServiceServicer_to_server(_Echo(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_the_identity_is_the_certificates_spiffe_uri_with_role_service(envoy_factory, suite, pki, echo_upstream):
    _, port = _start(envoy_factory, {**{t: suite.addr for t in UPSTREAMS}, "session": echo_upstream}, pki)
    forged = (("x-banhammer-role", "admin"), ("x-banhammer-subject", "gm:root"), ("x-banhammer-session", "s1"),
              ("authorization", "Bearer whatever"))
    with _channel(port, pki, "game") as ch:
        _, call = ban_pb2_grpc.BanServiceStub(ch).IsBanned.with_call(
            ban_pb2.IsBannedRequest(subject="x"), metadata=forged, timeout=10)
    assert dict(call.trailing_metadata()) == {"x-banhammer-subject": GAME, "x-banhammer-role": "service",
                                              "x-banhammer-session": "<absent>", "authorization": "<absent>"}


def test_each_identity_has_its_own_rate_limit(envoy_factory, suite, pki):
    _, port = _start(envoy_factory, {t: suite.addr for t in UPSTREAMS}, pki, mtls_caller_limit="5/3600")
    with _channel(port, pki, "game") as ch:
        for _ in range(5):
            _is_banned(ch)
        with pytest.raises(grpc.RpcError) as err:
            _is_banned(ch)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with _channel(port, pki, "game2") as ch:
        assert _is_banned(ch).banned is False


async def test_the_sdk_connects_with_a_client_certificate(mtls_gateway, pki, suite):
    _, port = mtls_gateway
    d = pki["dir"]
    async with await Client.connect(f"127.0.0.1:{port}", ca=d / "ca.pem", cert=d / "game.pem",
                                    key=d / "game-key.pem", server_name="localhost") as client:
        assert client.bans.synced  # WatchBans over mTLS
        assert await client.is_banned("mtls-sdk-nobody") is False
