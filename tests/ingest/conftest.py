"""Ingest fixtures: a migrated database per session, and the ingest service hosted in-process.

Every test isolates itself by player id (``player()`` gives a fresh one), so the tests share one
database and one runtime and stay fast.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio

from banhammer.ingest.v1 import ingest_pb2_grpc
from services.ingest.store import run_migrations
from services.runtime.server import start_runtime
from tests.harness import free_port, wait_serving

RULES = Path(__file__).with_name("rules.test.json")


def player(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ingest_env(dsn: str, **extra: str) -> dict[str, str]:
    env = {
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "HEALTH_INTERVAL_SECONDS": "0.3",
        "TIMESCALEDB_URL": dsn,
        "INGEST_RULES_FILE": str(RULES),
        "INGEST_BASELINE_CACHE_SECONDS": "0",
        "INGEST_POOL_SIZE": "6",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def ingest_dsn(new_database) -> str:
    return new_database("ingest")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def migrated_dsn(ingest_dsn: str) -> str:
    await run_migrations(ingest_dsn, 7)
    return ingest_dsn


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ingest_runtime(migrated_dsn: str):
    runtime = await start_runtime(["ingest"], environ=ingest_env(migrated_dsn))
    addr = f"127.0.0.1:{runtime.port}"
    await wait_serving(addr, "banhammer.ingest.v1.IngestService", timeout=30)
    yield runtime
    await runtime.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stub(ingest_runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ingest_runtime.port}") as channel:
        yield ingest_pb2_grpc.IngestServiceStub(channel)


@pytest_asyncio.fixture(loop_scope="session")
async def db(migrated_dsn: str):
    """A connection per test (a session-wide one would not survive the PostgreSQL restart test)."""
    conn = await asyncpg.connect(migrated_dsn)
    yield conn
    await conn.close()
