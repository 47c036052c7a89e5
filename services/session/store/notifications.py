"""Notification channels as Redis Streams: XADD with retention trimming, replay by XRANGE, live
reads by XREAD BLOCK on a separate pool (a blocked read holds its connection)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import ResponseError

from services.runtime.store_errors import guard

from . import keys, scripts
from .client import STORE


@dataclass(frozen=True)
class Entry:
    channel: str
    id: str
    type: str
    message: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class ChannelState:
    last_id: str  # last entry id ever added ("0-0" when none)
    first_id: str  # oldest retained ("" when empty)
    max_deleted_id: str  # newest trimmed/deleted id ("0-0" when none)


def id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entry(channel: str, entry_id: bytes, fields: dict) -> Entry:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return Entry(channel, entry_id.decode(), f.get("type", ""), f.get("message", ""), json.loads(f.get("attrs", "{}")))


@guard(STORE)
class NotificationStore:
    def __init__(self, r: redis.Redis, blocking: redis.Redis, max_len: int, retention_ms: int) -> None:
        self.r = r
        self.blocking = blocking
        self.max_len = max_len
        self.retention_ms = retention_ms
        self._publish = r.register_script(scripts.PUBLISH)

    async def publish(self, channel: str, type_: str, message: str, attributes: dict[str, str]) -> str:
        entry_id = await self._publish(
            keys=[keys.notification(channel)],
            args=[self.max_len, self.retention_ms, "type", type_, "message", message,
                  "attrs", json.dumps(attributes, separators=(",", ":"))])
        return entry_id.decode()

    async def state(self, channel: str) -> ChannelState:
        try:
            info = await self.r.xinfo_stream(keys.notification(channel))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return ChannelState("0-0", "", "0-0")
            raise
        first = info.get("first-entry")
        return ChannelState(
            last_id=_s(info["last-generated-id"]),
            first_id=_s(first[0]) if first else "",
            max_deleted_id=_s(info.get("max-deleted-entry-id", b"0-0")),
        )

    async def after(self, channel: str, after_id: str, count: int) -> list[Entry]:
        """Retained entries with id > ``after_id`` (replay), oldest first."""
        rows = await self.r.xrange(keys.notification(channel), min=f"({after_id}", max="+", count=count)
        return [_entry(channel, i, f) for i, f in rows]

    async def wait(self, positions: dict[str, str], block_ms: int, count: int) -> list[Entry]:
        """New entries after ``positions`` (channel -> id), blocking up to ``block_ms``."""
        streams = {keys.notification(c): i for c, i in positions.items()}
        prefix = len(keys.notification(""))
        rows = await self.blocking.xread(streams, count=count, block=block_ms)
        return [_entry(k.decode()[prefix:], i, f) for k, entries in rows or [] for i, f in entries]


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
