"""Energy fixtures: the session and energy services in one in-process runtime, on the harness's
real PostgreSQL, Redis and InfluxDB. SESSION_SERVICE_ADDR points at the runtime itself."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import pytest

from banhammer.energy.v1 import (alert_pb2_grpc, building_pb2_grpc, dashboard_pb2_grpc, forecast_pb2_grpc,
                                 sensor_pb2_grpc, usage_pb2_grpc, user_pb2_grpc)
from banhammer.session.v1 import notification_pb2_grpc
from tests.harness.processes import free_port
from tests.harness.suite import Suite


@pytest.fixture(scope="session")
def energy_env(new_database, redis_url, influx_server, tmp_path_factory) -> dict[str, str]:
    port = free_port()
    return {
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        "SHUTDOWN_GRACE_SECONDS": "1",
        "HEALTH_INTERVAL_SECONDS": "0.5",
        "REDIS_URL": redis_url,
        "SESSION_SERVICE_ADDR": f"127.0.0.1:{port}",
        "ENERGY_DATABASE_URL": new_database("energy"),
        "INFLUXDB_URL": influx_server.url,
        "INFLUXDB_DATABASE": f"energy_test_{uuid.uuid4().hex[:8]}",
        "INFLUXDB_TIMEOUT_SECONDS": "2",
        "ENERGY_AUTO_MIGRATE": "true",
        "ENERGY_SPOOL_DIR": str(tmp_path_factory.mktemp("spool")),
        # Cheap argon2id for tests (production default: 64 MiB, t=3, p=4); same code path.
        "ENERGY_ARGON2_MEMORY_KIB": "8192",
        "ENERGY_ARGON2_TIME_COST": "2",
        "ENERGY_ARGON2_PARALLELISM": "1",
        "ENERGY_ALERT_INTERVAL_SECONDS": "0",  # tests drive the evaluator themselves
        "ENERGY_ALERT_WRITE_GATHER_SECONDS": "0",
        "ENERGY_DASHBOARD_CACHE_SECONDS": "2",
    }


@pytest.fixture(scope="session")
def energy(energy_env) -> Iterator[Suite]:
    running = Suite(energy_env, targets=("session", "energy"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def service(energy):
    """The in-process Energy service object (for driving the alert evaluator)."""
    return energy.runtime.services["energy"]


@pytest.fixture(scope="session")
async def channel(energy) -> grpc.aio.Channel:
    ch = grpc.aio.insecure_channel(energy.addr)
    yield ch
    await ch.close()


class Stubs:
    def __init__(self, ch: grpc.aio.Channel) -> None:
        self.users = user_pb2_grpc.UserServiceStub(ch)
        self.buildings = building_pb2_grpc.BuildingServiceStub(ch)
        self.usage = usage_pb2_grpc.EnergyUsageServiceStub(ch)
        self.sensors = sensor_pb2_grpc.SensorServiceStub(ch)
        self.alerts = alert_pb2_grpc.AlertServiceStub(ch)
        self.dashboard = dashboard_pb2_grpc.DashboardServiceStub(ch)
        self.forecast = forecast_pb2_grpc.ForecastServiceStub(ch)
        self.notifications = notification_pb2_grpc.NotificationServiceStub(ch)


@pytest.fixture(scope="session")
def stubs(channel) -> Stubs:
    return Stubs(channel)


def _second_runtime(energy_env: dict[str, str], spool, **overrides: str) -> Iterator[Suite]:
    """Another energy runtime on its own port and spool, sharing the database and the session service."""
    running = Suite(dict(energy_env, GRPC_PORT=str(free_port()), ENERGY_SPOOL_DIR=str(spool), **overrides),
                    targets=("energy",))
    try:
        yield running.start()
    finally:
        running.stop()


async def _stubs_of(suite: Suite):
    ch = grpc.aio.insecure_channel(suite.addr)
    yield Stubs(ch)
    await ch.close()


@pytest.fixture(scope="session")
def strict_energy(energy, energy_env, tmp_path_factory) -> Iterator[Suite]:
    """ENERGY_REQUIRE_AUTH on."""
    yield from _second_runtime(energy_env, tmp_path_factory.mktemp("strict-spool"), ENERGY_REQUIRE_AUTH="true")


@pytest.fixture(scope="session")
async def strict_stubs(strict_energy) -> Stubs:
    async for stubs in _stubs_of(strict_energy):
        yield stubs


@pytest.fixture(scope="session")
def live_energy(energy, energy_env, tmp_path_factory) -> Iterator[Suite]:
    """Threshold rules evaluated on write (and no periodic tick)."""
    yield from _second_runtime(energy_env, tmp_path_factory.mktemp("live-spool"),
                               ENERGY_ALERT_WRITE_GATHER_SECONDS="0.05")


@pytest.fixture(scope="session")
async def live_stubs(live_energy) -> Stubs:
    async for stubs in _stubs_of(live_energy):
        yield stubs
