"""RateLimitService: atomic check-and-consume under concurrency."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from banhammer.session.v1 import rate_limit_pb2 as pb

from .helpers import dur, unique, violations


# Windows of an hour: no unit comes back while a test runs, however slow the machine. The advice a
# denial gives is exact (GCRA) less the time since the first consumption, which the test measures
# rather than bounds.


async def test_concurrent_consumers_get_exactly_the_limit(limits):
    key = unique("gw:game_server")
    started = time.monotonic()
    replies = await asyncio.gather(*(limits.Consume(pb.ConsumeRequest(key=key, limit=25, window=dur(3600)))
                                     for _ in range(120)))
    took_ms = (time.monotonic() - started) * 1000
    allowed = [x for x in replies if x.allowed]
    denied = [x for x in replies if not x.allowed]
    assert len(allowed) == 25
    assert sorted(x.remaining for x in allowed) == list(range(25))
    # Denied calls consume nothing and say when one unit fits again: 3600 s / 25 = 144 s after the
    # first consumption; and when the key is empty again: an hour after it.
    assert all(x.remaining == 0 and 144_000 - took_ms - 1 <= x.retry_after.ToMilliseconds() <= 144_000
               for x in denied)
    assert all(3_600_000 - took_ms - 1 <= x.reset_after.ToMilliseconds() <= 3_600_000 for x in denied)


async def test_cost_and_denial_consume_nothing(limits):
    key = unique("tenant")
    started = time.monotonic()
    big = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(3600), cost=7))
    assert big.allowed and big.remaining == 3
    denied = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(3600), cost=4))
    took_ms = (time.monotonic() - started) * 1000
    # 4 units fit once 1 of the 7 has come back: 360 s after the first call.
    assert not denied.allowed and denied.remaining == 3
    assert 360_000 - took_ms - 1 <= denied.retry_after.ToMilliseconds() <= 360_000
    fits = await limits.Consume(pb.ConsumeRequest(key=key, limit=10, window=dur(3600), cost=3))
    assert fits.allowed and fits.remaining == 0


async def test_rate_limit_validation(limits):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await limits.Consume(pb.ConsumeRequest(key="k", limit=5, window=dur(0.5), cost=6))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err.value)) == {"window", "cost"}
