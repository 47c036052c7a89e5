"""The ban changes channel (a Redis Stream the ban scripts append to): replay and blocking reads.

Entries carry the change's kind, subject and the ban JSON as the active-ban key holds it, so a
watcher never needs a second read to learn a new ban's expiry.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

from services.runtime.store_errors import guard

from ..models import BanRecord
from . import keys
from .bans import _ban
from .client import STORE
from .notifications import ChannelState, NotificationStore


@dataclass(frozen=True)
class BanChangeEntry:
    position: str  # stream entry id
    subject: str
    banned: bool
    ban: BanRecord


def _change(entry_id: bytes, fields: dict) -> BanChangeEntry:
    return BanChangeEntry(entry_id.decode(), fields[b"message"].decode(), fields[b"type"] == b"banned",
                          _ban(fields[b"ban"]))


@guard(STORE)
class BanChangeStore:
    def __init__(self, r: redis.Redis, blocking: redis.Redis) -> None:
        self.r = r
        self.blocking = blocking
        self._channels = NotificationStore(r, blocking, keys.BAN_CHANGES_MAX_LEN, 0)

    async def state(self) -> ChannelState:
        return await self._channels.state(keys.BAN_CHANGES_CHANNEL)

    async def after(self, position: str, count: int) -> list[BanChangeEntry]:
        """Retained changes after ``position``, oldest first (replay)."""
        rows = await self.r.xrange(keys.BAN_CHANGES, min=f"({position}", max="+", count=count)
        return [_change(i, f) for i, f in rows]

    async def wait(self, position: str, block_ms: int, count: int) -> list[BanChangeEntry]:
        """New changes after ``position``, blocking up to ``block_ms``."""
        rows = await self.blocking.xread({keys.BAN_CHANGES: position}, count=count, block=block_ms)
        return [_change(i, f) for _, entries in rows or [] for i, f in entries]
