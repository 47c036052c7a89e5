"""Query-service fixtures: a database migrated by ingest's real migrations and loaded with a
known data set, a read-only role, and query-only runtimes on free ports (the harness's Suite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import psycopg
import pytest

from banhammer.query.v1 import query_pb2_grpc
from tests.harness import free_port
from tests.harness.suite import Suite

from . import data

OWNER, READER = "banhammer", "banhammer_query"


@dataclass
class Database:
    owner_dsn: str
    reader_dsn: str
    name: str
    dataset: data.Dataset

    def rows(self, query: str, params=()) -> list[tuple]:
        """Run independent raw SQL as the owner (the expected values of the tests)."""
        with psycopg.connect(self.owner_dsn, autocommit=True) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description is not None else []


async def _database(pg_server, *, hll: bool = False) -> Database:
    owner_dsn = pg_server.new_database("query", owner=OWNER)
    name = owner_dsn.rsplit("/", 1)[1]
    dataset = await data.load(owner_dsn, superuser_dsn=pg_server.dsn(name), hll=hll)
    reader_dsn = pg_server.grant_read_only(name, READER, OWNER)
    return Database(owner_dsn, reader_dsn, name, dataset)


@pytest.fixture(scope="session")
async def db(pg_server) -> Database:
    """The shared, read-only-by-convention data set (tests must not modify it)."""
    return await _database(pg_server)


@pytest.fixture(scope="session")
def new_db(pg_server) -> Callable:
    """A private copy of the data set for tests that modify data (async factory; ``hll=True``:
    with the hll extension, so distinct players come from sketches)."""
    return lambda hll=False: _database(pg_server, hll=hll)


@dataclass
class Running:
    suite: Suite
    channel: grpc.Channel
    stub: query_pb2_grpc.QueryServiceStub


@pytest.fixture(scope="session")
def start_query() -> Iterator[Callable[..., Running]]:
    """``start_query(dsn, **env)``: a runtime hosting only the query service, SERVING."""
    started: list[Running] = []

    def start(dsn: str, **env: str) -> Running:
        environ = {"GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(free_port()), "LOG_LEVEL": "WARNING",
                   "SHUTDOWN_GRACE_SECONDS": "1", "HEALTH_INTERVAL_SECONDS": "0.5",
                   "QUERY_DATABASE_URL": dsn, **env}
        suite = Suite(environ, targets=("query",)).start(timeout=30)
        channel = grpc.insecure_channel(suite.addr)
        running = Running(suite, channel, query_pb2_grpc.QueryServiceStub(channel))
        started.append(running)
        return running

    yield start
    for running in started:
        running.channel.close()
        running.suite.stop()


@pytest.fixture(scope="session")
def query(db: Database, start_query) -> query_pb2_grpc.QueryServiceStub:
    """The query service on the shared data set, every call computed (no shared snapshots)."""
    return start_query(db.reader_dsn, QUERY_SNAPSHOT_FRESH_MS="0").stub
