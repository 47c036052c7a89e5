"""Durable local spool for line-protocol batches InfluxDB could not take yet.

SQLite in WAL mode with ``synchronous=FULL``: a committed append has been fsynced, so a batch is
acknowledged only once it survives a crash or a kill. Batches are replayed in insertion order (rowid).
The spool is bounded by payload bytes; when full, appends are refused (the caller answers UNAVAILABLE).
All SQLite work runs on one dedicated thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: When each batch was spooled (a table of its own, so spool files of earlier versions open unchanged;
#: their batches count as spooled when the file is opened).
_SPOOLED_AT = "CREATE TABLE IF NOT EXISTS spooled_at (id INTEGER PRIMARY KEY, at REAL NOT NULL)"
_OLDEST = "SELECT min(coalesce(s.at, ?)) FROM batches b LEFT JOIN spooled_at s ON s.id = b.id"


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(directory) / "influx-spool.sqlite3"
        self.max_bytes = max_bytes
        self.clock = clock
        self.oldest_at: float | None = None  # when the oldest pending batch was spooled
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="energy-spool")
        self._db: sqlite3.Connection | None = None
        self.pending_batches = 0
        self.pending_bytes = 0

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                   " points INTEGER NOT NULL, payload BLOB NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, points INTEGER NOT NULL,"
                   " payload BLOB NOT NULL, reason TEXT NOT NULL, rejected_at TEXT NOT NULL DEFAULT (datetime('now')))")
        db.execute(_SPOOLED_AT)
        count, size = db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM batches").fetchone()
        self.pending_batches, self.pending_bytes = count, size
        self._db = db
        self._find_oldest()

    def _find_oldest(self) -> None:
        self.oldest_at = self._db.execute(_OLDEST, (self.clock(),)).fetchone()[0] if self.pending_batches else None

    def oldest_age(self) -> float:
        """Seconds since the oldest pending batch was spooled (0 when none is)."""
        return 0.0 if self.oldest_at is None else max(0.0, self.clock() - self.oldest_at)

    async def append(self, payload: bytes, points: int) -> None:
        await self._run(self._append, payload, points)

    def _append(self, payload: bytes, points: int) -> None:
        if self.pending_bytes + len(payload) > self.max_bytes:
            raise SpoolFull(f"spool holds {self.pending_bytes} bytes (limit {self.max_bytes})")
        now = self.clock()
        with self._db:  # one transaction: committed (and fsynced) on exit
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute("INSERT INTO batches (points, payload) VALUES (?, ?)", (points, payload))
            self._db.execute("INSERT INTO spooled_at (id, at) VALUES (?, ?)", (cursor.lastrowid, now))
        self.pending_batches += 1
        self.pending_bytes += len(payload)
        if self.oldest_at is None:
            self.oldest_at = now

    async def oldest(self, max_points: int) -> list[tuple[int, int, bytes]]:
        """The oldest batches (id, points, payload) totalling at most max_points (always at least one)."""
        return await self._run(self._oldest, max_points)

    def _oldest(self, max_points: int) -> list[tuple[int, int, bytes]]:
        out, total = [], 0
        for row in self._db.execute("SELECT id, points, payload FROM batches ORDER BY id LIMIT 64"):
            if out and total + row[1] > max_points:
                break
            out.append(row)
            total += row[1]
        return out

    async def remove(self, ids: list[int]) -> None:
        await self._run(self._remove, ids)

    def _remove(self, ids: list[int]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            sizes = self._db.execute(
                f"SELECT coalesce(sum(length(payload)), 0) FROM batches WHERE id IN ({','.join('?' * len(ids))})",
                ids).fetchone()[0]
            self._db.executemany("DELETE FROM batches WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM spooled_at WHERE id = ?", [(i,) for i in ids])
        self.pending_batches -= len(ids)
        self.pending_bytes -= sizes
        self._find_oldest()

    async def reject(self, batch_id: int, reason: str) -> None:
        """Move a batch InfluxDB refuses to a dead-letter table so it cannot block the queue."""
        await self._run(self._reject, batch_id, reason)

    def _reject(self, batch_id: int, reason: str) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT points, payload FROM batches WHERE id = ?", (batch_id,)).fetchone()
            self._db.execute("INSERT INTO rejected (id, points, payload, reason) VALUES (?, ?, ?, ?)",
                             (batch_id, row[0], row[1], reason[:1000]))
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._db.execute("DELETE FROM spooled_at WHERE id = ?", (batch_id,))
        self.pending_batches -= 1
        self.pending_bytes -= len(row[1])
        self._find_oldest()

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        await self._run(_close)
        self._thread.shutdown(wait=True)
