"""Namespaced cache with stampede protection.

GetOrLease hands exactly one caller a lease (an atomic SET NX in Redis) while the value is
missing; the others get `wait` (or, with max_wait, the server polls briefly for the value on
their behalf). Set with the lease token stores the value and releases the lease.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from . import tokens
from .clock import Clock
from .store.cache import CacheStore
from .validation import Violations

NAMESPACE = re.compile(r"[a-z0-9_-]+")
MAX_VALUE = 1024 * 1024
MIN_TTL_MS, MAX_TTL_MS = 1000, 7 * 86400_000
MIN_LEASE_MS, MAX_LEASE_MS, DEFAULT_LEASE_MS = 100, 300_000, 10_000
MAX_WAIT_MS = 5000
POLL_S = 0.025  # how often a waiting GetOrLease looks for the holder's value


@dataclass(frozen=True)
class Hit:
    value: bytes
    expire_ms: int


@dataclass(frozen=True)
class Lease:
    token: str
    expire_ms: int


@dataclass(frozen=True)
class Wait:
    retry_after_ms: int


class Cache:
    def __init__(self, store: CacheStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def get(self, namespace: str, key: str) -> Hit | None:
        _check_key(namespace, key).raise_if_any()
        found = await self.store.get(namespace, key)
        return None if found is None else Hit(found[0], self.clock.now_ms() + found[1])

    async def set(self, namespace: str, key: str, value: bytes, ttl_ms: int | None, lease_token: str) -> tuple[int, bool]:
        v = _check_key(namespace, key)
        if len(value) > MAX_VALUE:
            v.add("value", f"must be at most {MAX_VALUE} bytes (got {len(value)})")
        if ttl_ms is None or not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
            v.add("ttl", "required, 1 s..7 days")
        v.text("lease_token", lease_token, 0, 128)
        v.raise_if_any()
        released = await self.store.set(namespace, key, value, ttl_ms, lease_token)
        return self.clock.now_ms() + ttl_ms, released

    async def delete(self, namespace: str, key: str) -> bool:
        _check_key(namespace, key).raise_if_any()
        return await self.store.delete(namespace, key)

    async def get_or_lease(self, namespace: str, key: str, lease_ms: int | None, max_wait_ms: int | None) -> Hit | Lease | Wait:
        v = _check_key(namespace, key)
        lease_ms = DEFAULT_LEASE_MS if lease_ms is None else lease_ms
        if not MIN_LEASE_MS <= lease_ms <= MAX_LEASE_MS:
            v.add("lease_ttl", "must be 100 ms..5 min")
        max_wait_ms = max_wait_ms or 0
        if not 0 <= max_wait_ms <= MAX_WAIT_MS:
            v.add("max_wait", "must be 0..5 s")
        v.raise_if_any()
        deadline = time.monotonic() + max_wait_ms / 1000
        token = tokens.new_id()
        while True:
            kind, value, ms = await self.store.get_or_lease(namespace, key, token, lease_ms)
            now = self.clock.now_ms()
            if kind == 1:
                return Hit(value, now + ms)
            if kind == 2:
                return Lease(token, now + ms)
            left = deadline - time.monotonic()
            if left <= 0:
                return Wait(min(max(min(ms, 100), 10), lease_ms))
            await asyncio.sleep(min(POLL_S, left))

    async def release(self, namespace: str, key: str, lease_token: str) -> bool:
        v = _check_key(namespace, key)
        v.text("lease_token", lease_token, 1, 128)
        v.raise_if_any()
        return await self.store.release(namespace, key, lease_token)


def _check_key(namespace: str, key: str) -> Violations:
    v = Violations()
    v.text("namespace", namespace, 1, 64, NAMESPACE, "[a-z0-9_-]+")
    v.text("key", key, 1, 512)
    return v
