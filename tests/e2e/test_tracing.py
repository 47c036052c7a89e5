"""One trace, end to end: client → Envoy → energy (→ PostgreSQL) → session (→ Redis).

The gateway and two real service processes export OTLP to a real receiver in this test; every span
of a login must share the client's trace id and hang off the right parent.
"""

from __future__ import annotations

import os
import secrets
import sys
import time

import grpc
import pytest

from banhammer.energy.v1 import user_pb2, user_pb2_grpc
from banhammer.session.v1 import session_pb2, session_pb2_grpc
from tests.harness import auth_metadata, check_health, gateway_metadata, wait_until
from tests.harness.otlp import OtlpReceiver
from tests.harness.paths import REPO
from tests.harness.processes import ManagedProcess, free_port

SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def traced_stack(pg_server, redis_server, influx_server, envoy_factory, tmp_path_factory):
    receiver = OtlpReceiver().start()
    workdir = tmp_path_factory.mktemp("traced")
    session_port, energy_port = free_port(), free_port()
    common = {
        **os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "GRPC_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{receiver.endpoint}", "OTEL_BSP_SCHEDULE_DELAY": "100",
        "HEALTH_INTERVAL_SECONDS": "0.5", "SHUTDOWN_GRACE_SECONDS": "1",
    }
    session = ManagedProcess("session", [sys.executable, "-m", "services.session"], workdir / "session.log", env={
        **common, "GRPC_PORT": str(session_port), "REDIS_URL": redis_server.url(5)}, cwd=REPO).start()
    energy = ManagedProcess("energy", [sys.executable, "-m", "services.energy"], workdir / "energy.log", env={
        **common, "GRPC_PORT": str(energy_port), "ENERGY_DATABASE_URL": pg_server.new_database("traced_energy"),
        "INFLUXDB_URL": influx_server.url, "INFLUXDB_DATABASE": "traced", "ENERGY_AUTO_MIGRATE": "true",
        "ENERGY_SPOOL_DIR": str(workdir / "spool"), "SESSION_SERVICE_ADDR": f"127.0.0.1:{session_port}",
        "ENERGY_ARGON2_MEMORY_KIB": "8192", "ENERGY_ARGON2_TIME_COST": "1", "ENERGY_ARGON2_PARALLELISM": "1",
        "ENERGY_ALERT_INTERVAL_SECONDS": "0"}, cwd=REPO).start()
    upstreams = {"session": f"127.0.0.1:{session_port}", "energy": f"127.0.0.1:{energy_port}",
                 "ingest": f"127.0.0.1:{session_port}", "query": f"127.0.0.1:{session_port}"}
    gw = envoy_factory(upstreams, otlp=receiver.endpoint)
    for name, proc in (("session", session), ("energy", energy)):
        wait_until(lambda n=name: check_health(gw.addr, "", metadata=gateway_metadata(n)) == "SERVING", 60,
                   f"{name} SERVING through Envoy", proc)
    with grpc.insecure_channel(f"127.0.0.1:{session_port}") as direct:
        admin = session_pb2_grpc.SessionServiceStub(direct).CreateSession(
            session_pb2.CreateSessionRequest(subject="trace-admin", role="admin"), timeout=10).token
    yield gw, receiver, admin
    energy.stop()
    session.stop()
    receiver.stop()


def _ancestors(span, by_id):
    seen = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        seen.append(span.span_id)
    return seen


def test_a_login_is_one_trace_across_gateway_services_and_stores(traced_stack):
    gw, receiver, admin = traced_stack
    with grpc.insecure_channel(gw.addr) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        users.RegisterUser(user_pb2.RegisterUserRequest(username="tracy", email="tracy@example.com",
                                                        password="correct horse battery", role=user_pb2.ROLE_USER),
                           metadata=auth_metadata(admin), timeout=20)
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        traceparent = f"00-{trace_id}-{client_span}-01"
        response = users.Authenticate(user_pb2.AuthenticateRequest(username="tracy", password="correct horse battery"),
                                      metadata=(*auth_metadata(admin), ("traceparent", traceparent)), timeout=20)
    assert response.session_token

    def complete():
        # Envoy and each service export in their own batches: wait for every span the test names.
        spans = receiver.spans(trace_id)
        names = {(s.service, s.name, s.kind) for s in spans}
        return ({("banhammer-energy", "/banhammer.energy.v1.UserService/Authenticate", SERVER),
                 ("banhammer-energy", "/banhammer.session.v1.SessionService/CreateSession", CLIENT),
                 ("banhammer-session", "/banhammer.session.v1.SessionService/CreateSession", SERVER)} <= names
                and any(s.service == "banhammer-gateway" and s.parent_span_id == client_span for s in spans)
                and any(s.service == "banhammer-session" and s.kind == CLIENT and not s.name.startswith("/") for s in spans)
                and any(s.service == "banhammer-energy" and s.kind == CLIENT and not s.name.startswith("/") for s in spans))

    deadline = time.monotonic() + 30
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = receiver.spans(trace_id)
    by_id = {s.span_id: s for s in spans}
    gateway = [s for s in spans if s.service == "banhammer-gateway"]
    assert gateway, f"no gateway spans in {spans}"
    # The gateway continued the client's trace: its first span is a child of the client's span.
    assert any(s.parent_span_id == client_span for s in gateway)
    energy_server = next(s for s in spans if s.service == "banhammer-energy" and s.kind == SERVER
                         and s.name == "/banhammer.energy.v1.UserService/Authenticate")
    assert by_id[energy_server.parent_span_id].service == "banhammer-gateway"
    # Energy's store call (PostgreSQL, via asyncpg) sits under its server span.
    db = [s for s in spans if s.service == "banhammer-energy" and s.kind == CLIENT and not s.name.startswith("/")]
    assert any(energy_server.span_id in _ancestors(s, by_id) for s in db), [s.name for s in db]
    # Energy → session: the client span is under energy's server span; session's server span under it.
    call = next(s for s in spans if s.service == "banhammer-energy" and s.kind == CLIENT
                and s.name == "/banhammer.session.v1.SessionService/CreateSession")
    assert energy_server.span_id in _ancestors(call, by_id)
    session_server = next(s for s in spans if s.service == "banhammer-session" and s.kind == SERVER
                          and s.name == "/banhammer.session.v1.SessionService/CreateSession")
    assert session_server.parent_span_id == call.span_id
    # And the session service's Redis calls under its server span.
    redis_spans = [s for s in spans if s.service == "banhammer-session" and s.kind == CLIENT and not s.name.startswith("/")]
    assert any(session_server.span_id in _ancestors(s, by_id) for s in redis_spans), [s.name for s in redis_spans]
