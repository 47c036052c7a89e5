"""RateLimitService: atomic check-and-consume under concurrency."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from banhammer.session.v1 import rate_limit_pb2 as pb

from .helpers import dur, unique, violations


async def test_concurrent_consumers_get_exactly_the_limit(limits):
    key = unique("gw:game_server")
    replies = await asyncio.gather(*(limits.Consume(pb.ConsumeRequest(key=key, limit=25, window=dur(60)))
                                     for _ in range(120)))
    allowed = [x for x in replies if x.allowed]
    denied = [x for x in replies if not x.allowed]
    assert len(allowed) == 25
    assert sorted(x.remaining for x in allowed) == list(range(25))
    # Denied calls consume nothing and say when one unit fits again (60 s / 25 = 2.4 s, less the
    # little real time the burst took).
    assert all(x.remaining == 0 and 2000 < x.retry_after.ToMilliseconds() <= 2400 for x in denied)
    assert all(59_000 < x.reset_after.ToMilliseconds() <= 60_000 for x in denied)


async def test_cost_and_denial_consume_nothing(limits):
    key = unique("tenant")
    big = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(10), cost=7))
    assert big.allowed and big.remaining == 3
    denied = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(10), cost=4))
    assert not denied.allowed and denied.remaining == 3 and 500 < denied.retry_after.ToMilliseconds() <= 1000
    fits = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(10), cost=3))
    assert fits.allowed and fits.remaining == 0


async def test_rate_limit_validation(limits):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await limits.Consume(pb.ConsumeRequest(key="k", limit=5, window=dur(0.5), cost=6))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err.value)) == {"window", "cost"}
