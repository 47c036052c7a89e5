"""The stack the hostile-input test attacks: all four services in one runtime *process* (so the
test's client and the services do not share an interpreter), on fresh PostgreSQL databases, their
own Redis database and InfluxDB database, behind a real Envoy with authentication on."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from banhammer.session.v1 import session_pb2, session_pb2_grpc
from tests.harness import ManagedProcess, check_health, free_port, gateway_metadata, wait_until
from tests.harness.envoy import EnvoyGateway
from tests.harness.fixtures import OWNER_ROLE, READER_ROLE
from tests.harness.paths import REPO, TARGETS
from tests.harness.stores import InfluxServer

REDIS_DB = 6  # this stack's keys only, so they can be fingerprinted


@dataclass
class Stack:
    addr: str  # the runtime, direct
    gateway: EnvoyGateway
    databases: dict[str, str]  # name -> superuser DSN, for fingerprints
    redis_url: str
    influx: InfluxServer
    influx_database: str
    tokens: dict[str, str]  # role -> session token


def _token(addr: str, subject: str, role: str) -> str:
    with grpc.insecure_channel(addr) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        return stub.CreateSession(session_pb2.CreateSessionRequest(subject=subject, role=role), timeout=10).token


@pytest.fixture(scope="module")
def stack(pg_server, redis_server, influx_server, envoy_factory, tmp_path_factory) -> Iterator[Stack]:
    ts_dsn = pg_server.new_database("hostile_ts", owner=OWNER_ROLE)
    ts_name = ts_dsn.rsplit("/", 1)[1]
    energy_dsn = pg_server.new_database("hostile_energy", owner=OWNER_ROLE)
    query_dsn = pg_server.grant_read_only(ts_name, READER_ROLE, OWNER_ROLE)
    influx_db = f"hostile_{uuid.uuid4().hex[:8]}"
    redis_url = redis_server.url(REDIS_DB)
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}",
        "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port), "LOG_LEVEL": "WARNING", "SHUTDOWN_GRACE_SECONDS": "2",
        "HEALTH_INTERVAL_SECONDS": "0.5", "TIMESCALEDB_URL": ts_dsn, "QUERY_DATABASE_URL": query_dsn,
        "ENERGY_DATABASE_URL": energy_dsn, "REDIS_URL": redis_url, "INFLUXDB_URL": influx_server.url,
        "INFLUXDB_DATABASE": influx_db, "SESSION_SERVICE_ADDR": f"127.0.0.1:{port}",
        "INGEST_MIGRATE_ON_START": "true", "ENERGY_AUTO_MIGRATE": "true",
        "ENERGY_SPOOL_DIR": str(tmp_path_factory.mktemp("hostile-spool")),
        # Cheap argon2id (same code path); no background alert evaluation to blur the fingerprints.
        "ENERGY_ARGON2_MEMORY_KIB": "8192", "ENERGY_ARGON2_TIME_COST": "1", "ENERGY_ARGON2_PARALLELISM": "1",
        "ENERGY_ALERT_INTERVAL_SECONDS": "0", "ENERGY_ALERT_WRITE_GATHER_SECONDS": "0",
        "GATEWAY_RATE_LIMITS": "user=1000000/1,service=1000000/1,admin=1000000/1",
    }
    workdir = tmp_path_factory.mktemp("hostile-runtime")
    proc = ManagedProcess("hostile-runtime", [sys.executable, "-m", "services.runtime", "--target", ",".join(TARGETS)],
                          workdir / "runtime.log", env=env, cwd=REPO)
    addr = f"127.0.0.1:{port}"
    try:
        proc.start()
        wait_until(lambda: check_health(addr) == "SERVING", 60, "the hostile runtime SERVING", proc)
        gw = envoy_factory({t: addr for t in TARGETS})
        wait_until(lambda: all(check_health(gw.addr, "", metadata=gateway_metadata(t)) == "SERVING" for t in TARGETS),
                   30, "every service SERVING through Envoy", gw.proc)
        tokens = {role: _token(addr, f"hostile-{role}", role) for role in ("admin", "service", "user")}
        yield Stack(addr, gw, {"ingest": ts_dsn.replace(f"{OWNER_ROLE}@", f"{pg_server.user}@"),
                               "energy": energy_dsn.replace(f"{OWNER_ROLE}@", f"{pg_server.user}@")},
                    redis_url, influx_server, influx_db, tokens)
    finally:
        proc.stop()
