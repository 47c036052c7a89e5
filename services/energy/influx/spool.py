"""Durable local spool for line-protocol batches InfluxDB could not take yet.

SQLite in WAL mode with ``synchronous=FULL``: a committed append has been fsynced, so a batch is
acknowledged only once it survives a crash or a kill. Batches are replayed in insertion order (rowid).
The spool is bounded by payload bytes; when full, appends are refused (the caller answers UNAVAILABLE).
All SQLite work runs on one dedicated thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.path = Path(directory) / "influx-spool.sqlite3"
        self.max_bytes = max_bytes
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
        count, size = db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM batches").fetchone()
        self.pending_batches, self.pending_bytes = count, size
        self._db = db

    async def append(self, payload: bytes, points: int) -> None:
        await self._run(self._append, payload, points)

    def _append(self, payload: bytes, points: int) -> None:
        if self.pending_bytes + len(payload) > self.max_bytes:
            raise SpoolFull(f"spool holds {self.pending_bytes} bytes (limit {self.max_bytes})")
        with self._db:  # one transaction: committed (and fsynced) on exit
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO batches (points, payload) VALUES (?, ?)", (points, payload))
        self.pending_batches += 1
        self.pending_bytes += len(payload)

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
        self.pending_batches -= len(ids)
        self.pending_bytes -= sizes

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
        self.pending_batches -= 1
        self.pending_bytes -= len(row[1])

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        await self._run(_close)
        self._thread.shutdown(wait=True)
