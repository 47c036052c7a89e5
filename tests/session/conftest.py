"""The session service in the test's event loop, on the harness's Redis, with a manual clock.

Sessions and bans expire by the injected clock, so expiry tests advance ``clock`` instead of
sleeping. Uses its own Redis database number so key scans see only this service's keys.
"""

from __future__ import annotations

import grpc
import pytest
import redis.asyncio as redis

from banhammer.session.v1 import (ban_pb2_grpc, cache_pb2_grpc, notification_pb2_grpc, rate_limit_pb2_grpc,
                                  session_pb2_grpc)
from services.runtime import ServiceSpec
from services.runtime.server import start_runtime
from services.session.clock import ManualClock
from services.session.config import SessionConfig
from services.session.service import Session
from tests.harness import wait_serving

DB = 7


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def session_redis_url(redis_server) -> str:
    return redis_server.url(DB)


@pytest.fixture(scope="session")
async def service(clock, session_redis_url):
    """(runtime, Session) hosting the five session services; stopped at session end."""
    built: list[Session] = []

    def build(conf: SessionConfig) -> Session:
        built.append(Session(conf, clock=clock))
        return built[-1]

    spec = ServiceSpec("session", SessionConfig, build, default_port=0)
    runtime = await start_runtime([spec], environ={
        "GRPC_HOST": "127.0.0.1", "HEALTH_INTERVAL_SECONDS": "0.2", "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "1", "REDIS_URL": session_redis_url, "REDIS_TIMEOUT_SECONDS": "1",
        "SWEEP_INTERVAL_SECONDS": "3600",  # tests call sweep() themselves
        # Gateway limits with a slow refill, so a burst test sees exactly the burst size.
        "GATEWAY_RATE_LIMITS": "energy_user=20/60,service=5000/1,admin=100/1",
    })
    await wait_serving(f"127.0.0.1:{runtime.port}", "", timeout=20)
    yield runtime, built[0]
    await runtime.stop()


@pytest.fixture(scope="session")
async def channel(service):
    runtime, _ = service
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    yield ch
    await ch.close()


@pytest.fixture
async def r(session_redis_url):
    """A plain client on the service's database, for inspecting what is stored (per test: the
    outage test restarts Redis under it)."""
    client = redis.from_url(session_redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def sessions(channel):
    return session_pb2_grpc.SessionServiceStub(channel)


@pytest.fixture
def bans(channel):
    return ban_pb2_grpc.BanServiceStub(channel)


@pytest.fixture
def cache(channel):
    return cache_pb2_grpc.CacheServiceStub(channel)


@pytest.fixture
def notify(channel):
    return notification_pb2_grpc.NotificationServiceStub(channel)


@pytest.fixture
def limits(channel):
    return rate_limit_pb2_grpc.RateLimitServiceStub(channel)
