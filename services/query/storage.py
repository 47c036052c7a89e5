"""Storage report: table sizes; chunks, compression and policies on TimescaleDB; partitions on
plain PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from . import limits, model
from .clock import now
from .deadline import Deadline
from .store import QueryStore, reads


class Storage:
    def __init__(self, store: QueryStore, clock: Callable[[], datetime] = now) -> None:
        self.store = store
        self.clock = clock

    async def stats(self, deadline: Deadline) -> model.StorageStats:
        as_of = self.clock()
        async with self.store.session(deadline) as s:
            version = await reads.timescaledb_version(s)
            # The extension can be installed while the tables are plain (migrated before it was).
            timescale = bool(version) and await reads.uses_hypertables(s)
            return await reads.storage(s, timescale=timescale, version=version, as_of=as_of,
                                       chunk_limit=limits.STORAGE_CHUNKS_MAX)
