"""Durable notification channels (Redis Streams): publish, and subscribe with replay.

A subscriber that reconnects with its last seen id per channel first gets what it missed (or a
gap event when retention trimmed part of it), then live messages, with no window in between:
live reads continue from the last replayed id, never from "$".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.runtime.errors import ResourceExhausted

from .store.keys import RESERVED_CHANNELS
from .store.notifications import ChannelState, Entry, NotificationStore, id_tuple
from .validation import Violations

CHANNEL = re.compile(r"[A-Za-z0-9_.:-]+")
STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
MAX_CHANNELS = 16
REPLAY_BATCH = 200
BLOCK_MS = 1000  # each blocking read returns at least this often, so cancellation is prompt


@dataclass(frozen=True)
class Gap:
    channel: str
    last_seen_id: str
    oldest_available_id: str


@dataclass(frozen=True)
class Event:
    item: Entry | Gap
    replayed: bool


class Notifications:
    def __init__(self, store: NotificationStore, max_subscribers: int) -> None:
        self.store = store
        self._slots = max_subscribers
        self._active = 0

    async def publish(self, channel: str, type_: str, message: str, attributes: dict[str, str]) -> str:
        v = Violations()
        v.text("channel", channel, 1, 128, CHANNEL, "[A-Za-z0-9_.:-]+")
        if channel in RESERVED_CHANNELS:
            v.add("channel", "is written only by the session service itself")
        v.text("type", type_, 1, 64)
        v.text("message", message, 0, 4096)
        v.attributes("attributes", attributes, 32, 1024)
        v.raise_if_any()
        return await self.store.publish(channel, type_, message, dict(attributes))

    def check_subscribe(self, channels: list[str], last_seen: dict[str, str]) -> None:
        v = Violations()
        if not 1 <= len(channels) <= MAX_CHANNELS:
            v.add("channels", f"must have 1..{MAX_CHANNELS} entries")
        if len(set(channels)) != len(channels):
            v.add("channels", "must be distinct")
        for i, c in enumerate(channels):
            v.text(f"channels[{i}]", c, 1, 128, CHANNEL, "[A-Za-z0-9_.:-]+")
        for c, last in last_seen.items():
            if c not in channels:
                v.add(f"last_seen_ids[{c!r}]", "channel is not in channels")
            if not STREAM_ID.fullmatch(last):
                v.add(f"last_seen_ids[{c!r}]", "must be a notification id like 1705314600000-0")
        v.raise_if_any()

    async def subscribe(self, channels: list[str], last_seen: dict[str, str]) -> AsyncIterator[Event]:
        self.check_subscribe(channels, last_seen)
        async with self.slot():
            positions: dict[str, str] = {}
            for channel in channels:
                state = await self.store.state(channel)
                if channel not in last_seen:
                    positions[channel] = state.last_id
                    continue
                seen = last_seen[channel]
                if missed_some(state, seen):
                    yield Event(Gap(channel, seen, state.first_id), replayed=True)
                positions[channel] = seen
                while True:
                    batch = await self.store.after(channel, positions[channel], REPLAY_BATCH)
                    for entry in batch:
                        positions[channel] = entry.id
                        yield Event(entry, replayed=True)
                    if len(batch) < REPLAY_BATCH:
                        break
            while True:
                for entry in await self.store.wait(positions, BLOCK_MS, REPLAY_BATCH):
                    positions[entry.channel] = entry.id
                    yield Event(entry, replayed=False)
                await asyncio.sleep(0)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of NOTIFY_MAX_SUBSCRIBERS live readers (Subscribe and WatchBans streams share them:
        each holds a blocking Redis connection)."""
        if self._active >= self._slots:
            raise ResourceExhausted("too many notification subscribers", retry_after=5.0)
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1


def missed_some(state: ChannelState, seen: str) -> bool:
    """Whether retention may have trimmed messages after ``seen``.

    Streams are trimmed only from the head (MAXLEN/MINID), which Redis does not record in
    max-deleted-entry-id; so a gap is reported when the last seen message itself is gone while
    later ones existed. In the rare case that exactly the seen message was trimmed and nothing
    after it, the gap reported is empty (conservative: never a silent loss).
    """
    last_seen = id_tuple(seen)
    if id_tuple(state.max_deleted_id) > last_seen:  # XDEL'd entries (not used by us, but honoured)
        return True
    if state.first_id:
        return id_tuple(state.first_id) > last_seen and last_seen != (0, 0)
    return id_tuple(state.last_id) > last_seen  # everything after it was trimmed
