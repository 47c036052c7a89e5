"""The runtime's store guard against real drivers and servers: an unreachable PostgreSQL or Redis is
UNAVAILABLE with retry advice, Redis out of memory RESOURCE_EXHAUSTED, and everything else (a bad
statement, a value the driver refuses, a domain error) passes through unchanged."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as redis
from redis import exceptions as redis_errors

from services.runtime.errors import NotFound, ResourceExhausted, Unavailable
from services.runtime.store_errors import guard
from tests.harness import ManagedProcess, free_port, wait_until


@guard("test database", retry_after=3.0)
class Store:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def run(self, sql: str, *args):
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def missing(self):
        raise NotFound("no such row")


async def test_an_unreachable_database_is_unavailable_with_retry_advice():
    with pytest.raises(Unavailable) as err:
        await Store(f"postgresql://nobody@127.0.0.1:{free_port()}/none").run("SELECT 1")
    assert err.value.message == "test database unavailable" and err.value.retry_after == 3.0
    assert isinstance(err.value.__cause__, OSError)


async def test_other_failures_pass_through(postgres_dsn):
    store = Store(postgres_dsn)
    assert await store.run("SELECT $1::int + 1", 1) == 2
    with pytest.raises(asyncpg.PostgresSyntaxError):
        await store.run("SELEKT 1")
    with pytest.raises(asyncpg.DataError):  # refused by the driver: a bug to report, not an outage
        await store.run("SELECT $1::int", 2**40)
    with pytest.raises(NotFound):
        await store.missing()


async def test_redis_unreachable_and_out_of_memory(tmp_path):
    async with guard("cache"):  # a block, e.g. around an async generator's reads
        pass
    refused = redis.Redis(port=free_port(), socket_connect_timeout=1)
    with pytest.raises(Unavailable, match="cache unavailable"):
        async with guard("cache"):
            await refused.get("k")
    await refused.aclose()
    port = free_port()
    server = ManagedProcess("redis-oom", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--maxmemory", "2mb",
                                         "--maxmemory-policy", "noeviction"], tmp_path / "redis.log").start()
    client = redis.Redis(port=port)
    try:
        wait_until(lambda: server.tail().find("Ready to accept connections") >= 0, 20, "redis-server ready", server)
        with pytest.raises(ResourceExhausted, match="cache out of memory"):
            async with guard("cache"):
                for i in range(100):
                    await client.set(f"k{i}", b"x" * 200_000)
        with pytest.raises(redis_errors.ResponseError):  # not a store outage: passes
            async with guard("cache"):
                await client.execute_command("NO-SUCH-COMMAND")
    finally:
        await client.aclose()
        server.stop()
