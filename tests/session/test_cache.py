"""CacheService against a real Redis: TTLs, namespaces, and stampede protection under concurrency."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from banhammer.session.v1 import cache_pb2 as pb

from .helpers import dur, unique, violations


async def test_set_get_delete_with_ttl(cache, r):
    key = unique("k")
    await cache.Set(pb.SetRequest(namespace="energy", key=key, value=b"\x00building_list", ttl=dur(1)))
    got = await cache.Get(pb.GetRequest(namespace="energy", key=key))
    assert got.found and got.value == b"\x00building_list"
    assert 0 < await r.pttl(f"cache:energy:{key}") <= 1000
    assert not (await cache.Get(pb.GetRequest(namespace="query", key=key))).found  # namespaced
    deadline = time.monotonic() + 5  # Redis owns cache TTLs: poll for the expiry
    while (await cache.Get(pb.GetRequest(namespace="energy", key=key))).found:
        assert time.monotonic() < deadline, "cache entry outlived its 1 s TTL"
        await asyncio.sleep(0.05)
    await cache.Set(pb.SetRequest(namespace="energy", key=key, value=b"v", ttl=dur(60)))
    assert (await cache.Delete(pb.DeleteRequest(namespace="energy", key=key))).deleted
    assert not (await cache.Delete(pb.DeleteRequest(namespace="energy", key=key))).deleted


async def test_cache_rejects_bad_input(cache):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cache.Set(pb.SetRequest(namespace="Energy!", key="", value=b"x" * (1024 * 1024 + 1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err.value)) == {"namespace", "key", "value", "ttl"}


async def test_stampede_only_one_caller_computes(cache):
    key = unique("stampede")
    computed = 0

    async def caller() -> bytes:
        nonlocal computed
        while True:
            out = await cache.GetOrLease(pb.GetOrLeaseRequest(namespace="query", key=key, lease_ttl=dur(10),
                                                              max_wait=dur(0.2)))
            kind = out.WhichOneof("outcome")
            if kind == "hit":
                return out.hit.value
            if kind == "lease":
                computed += 1
                await asyncio.sleep(0.3)  # the expensive computation the lease protects
                done = await cache.Set(pb.SetRequest(namespace="query", key=key, value=b"stats", ttl=dur(60),
                                                     lease_token=out.lease.lease_token))
                assert done.lease_released
                return b"stats"
            assert 0.01 <= out.wait.retry_after.ToMilliseconds() / 1000 <= 10
            await asyncio.sleep(out.wait.retry_after.ToMilliseconds() / 1000)

    values = await asyncio.gather(*(caller() for _ in range(40)))
    assert computed == 1
    assert values == [b"stats"] * 40


async def test_released_lease_can_be_taken_by_another_caller(cache):
    key = unique("lease")
    first = await cache.GetOrLease(pb.GetOrLeaseRequest(namespace="query", key=key))
    assert first.WhichOneof("outcome") == "lease"
    assert (await cache.GetOrLease(pb.GetOrLeaseRequest(namespace="query", key=key))).WhichOneof("outcome") == "wait"
    assert not (await cache.ReleaseLease(pb.ReleaseLeaseRequest(namespace="query", key=key, lease_token="stale"))).released
    assert (await cache.ReleaseLease(pb.ReleaseLeaseRequest(namespace="query", key=key,
                                                            lease_token=first.lease.lease_token))).released
    second = await cache.GetOrLease(pb.GetOrLeaseRequest(namespace="query", key=key))
    assert second.WhichOneof("outcome") == "lease" and second.lease.lease_token != first.lease.lease_token
    # A Set with the superseded token still stores the value but reports the lease as not released.
    out = await cache.Set(pb.SetRequest(namespace="query", key=key, value=b"v", ttl=dur(5),
                                        lease_token=first.lease.lease_token))
    assert not out.lease_released
    assert (await cache.GetOrLease(pb.GetOrLeaseRequest(namespace="query", key=key))).hit.value == b"v"
