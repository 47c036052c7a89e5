"""WatchBans: the ban list's changes for SDK caches, resumable from a position.

A watcher resuming from a retained position gets every change after it, then ``Synced``; one that
starts fresh, or whose position was trimmed (or is ahead of the stream: a Redis that lost data),
gets ``Synced(reset=True)`` at once and must drop what it cached. Live reads continue from the last
position sent, never from "$", so nothing falls between replay and live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .notifications import BLOCK_MS, REPLAY_BATCH, STREAM_ID, Notifications, missed_some
from .store.ban_changes import BanChangeEntry, BanChangeStore
from .store.notifications import id_tuple
from .validation import Violations


@dataclass(frozen=True)
class Synced:
    position: str
    reset: bool


class BanWatch:
    def __init__(self, store: BanChangeStore, notifications: Notifications) -> None:
        self.store = store
        self.notifications = notifications  # its subscriber slots are shared with Subscribe

    async def watch(self, resume_from: str) -> AsyncIterator[BanChangeEntry | Synced]:
        v = Violations()
        if resume_from and not STREAM_ID.fullmatch(resume_from):
            v.add("resume_from", "must be a position like 1705314600000-0, or empty")
        v.raise_if_any()
        async with self.notifications.slot():
            state = await self.store.state()
            position = resume_from
            if (not resume_from or missed_some(state, resume_from)
                    or id_tuple(resume_from) > id_tuple(state.last_id)):
                position = state.last_id
                yield Synced(position, reset=True)
            else:
                while True:
                    batch = await self.store.after(position, REPLAY_BATCH)
                    for change in batch:
                        position = change.position
                        yield change
                    if len(batch) < REPLAY_BATCH:
                        break
                yield Synced(position, reset=False)
            while True:
                for change in await self.store.wait(position, BLOCK_MS, REPLAY_BATCH):
                    position = change.position
                    yield change
                await asyncio.sleep(0)
