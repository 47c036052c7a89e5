"""The one schema migration runner: numbered SQL files applied in order, once each, with checksums.

A service keeps its migrations in one directory as ``NNNN_<name>.sql``. A version may instead come
in variants, one file per capability of the server (``0002_timescale.sql`` / ``0002_plain.sql``):
the service names its variants, and ``choose`` picks one per database when migrating.

Applying (``Migrations.upgrade``):

1. ``pg_advisory_lock(lock_key)``: concurrent runners (replicas starting at once) take turns.
2. The ledger ``schema_migrations(version, name, checksum, applied_at)`` is created if missing (a
   ledger from before checksums gets the column).
3. Every applied version is checked against its file: a SHA-256 that differs means the file was
   edited after it ran, and the run stops with a message saying which one (a database must never
   silently diverge from the files that describe it). A row without a checksum (written before
   checksums) is given the file's.
4. Each pending version runs in its own transaction together with its ledger row.
5. ``after(conn, variant)`` runs last, while the lock is held (e.g. re-applying a tuned policy).

The ledger records the variant a version was applied with, so verification reads the same file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("banhammer.migrations")

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NUMBERED = re.compile(r"^\d{4}_")
LEDGER = "schema_migrations"

_CREATE_LEDGER = f"""
CREATE TABLE IF NOT EXISTS {LEDGER} (
    version    INTEGER PRIMARY KEY,
    name       TEXT        NOT NULL,
    checksum   TEXT,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
_ADD_CHECKSUM = f"ALTER TABLE {LEDGER} ADD COLUMN IF NOT EXISTS checksum TEXT"


class MigrationError(Exception):
    """The migrations cannot be applied as they are (their files, or the database, disagree)."""


@dataclass(frozen=True)
class Migration:
    version: int
    files: dict[str, Path]  # name -> file: a single file, or one per variant

    def pick(self, variant: str | None) -> tuple[str, Path]:
        """(name recorded in the ledger, file) for a database with capability ``variant``."""
        if len(self.files) == 1 and variant not in self.files:
            return next(iter(self.files.items()))
        if variant not in self.files:
            raise MigrationError(f"migration {self.version:04d} has no variant {variant!r} "
                                 f"(has {', '.join(sorted(self.files))})")
        return variant, self.files[variant]

    def label(self, name: str) -> str:
        return f"{self.version:04d}_{name}"


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Migrations:
    """The migrations of one service: ``directory``, an advisory ``lock_key`` of its own, and the
    file names that are capability variants rather than migration names."""

    def __init__(self, directory: Path, *, lock_key: int, variants: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.lock_key = lock_key
        self.variants = variants

    def discover(self) -> list[Migration]:
        by_version: dict[int, dict[str, Path]] = {}
        for path in sorted(self.directory.glob("*.sql")):
            match = _FILE.match(path.name)
            if not match:
                raise MigrationError(f"bad migration file name {path.name!r} (want NNNN_name.sql)")
            by_version.setdefault(int(match[1]), {})[match[2]] = path
        out = []
        for version, files in sorted(by_version.items()):
            names = set(files)
            if (names & set(self.variants) and names != set(self.variants)) or (len(names) > 1 and names != set(self.variants)):
                raise MigrationError(f"migration {version:04d} has several files ({', '.join(sorted(names))}): "
                                     f"only the variants {', '.join(self.variants) or '(none)'} may share a version, "
                                     "and then all of them")
            out.append(Migration(version, files))
        return out

    @property
    def latest(self) -> int:
        found = self.discover()
        return found[-1].version if found else 0

    async def current_version(self, conn: asyncpg.Connection) -> int:
        """Highest applied version; 0 on an empty database."""
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", LEDGER):
            return 0
        return await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {LEDGER}")

    async def upgrade(self, conn: asyncpg.Connection, *,
                      choose: Callable[[asyncpg.Connection], Awaitable[str | None]] | None = None,
                      after: Callable[[asyncpg.Connection, str | None], Awaitable[None]] | None = None) -> list[int]:
        """Verify what was applied, apply what is pending; returns the versions applied now."""
        migrations = self.discover()
        await conn.execute("SELECT pg_advisory_lock($1)", self.lock_key)
        try:
            await conn.execute(_CREATE_LEDGER)
            await conn.execute(_ADD_CHECKSUM)
            variant = await choose(conn) if choose is not None else None
            applied = await self._verify(conn, migrations)
            done = []
            for m in migrations:
                if m.version in applied:
                    continue
                name, path = m.pick(variant)
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(f"INSERT INTO {LEDGER} (version, name, checksum) VALUES ($1, $2, $3)",
                                       m.version, name, checksum(path))
                log.info("migration applied", extra={"version": m.version, "file": path.name})
                done.append(m.version)
            if after is not None:
                await after(conn, variant)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", self.lock_key)

    async def check(self, conn: asyncpg.Connection) -> None:
        """Raise MigrationError unless every migration is applied, each from the file as it is now
        (for a service that serves without migrating)."""
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", LEDGER):
            raise MigrationError("the database has no schema yet: run the service's migrate command")
        migrations = self.discover()
        applied = await self._verify(conn, migrations, adopt=False)
        if missing := [m.label(next(iter(m.files))) for m in migrations if m.version not in applied]:
            raise MigrationError(f"database schema is behind (pending: {', '.join(missing)}): "
                                 "run the service's migrate command")

    async def _verify(self, conn: asyncpg.Connection, migrations: list[Migration], *,
                      adopt: bool = True) -> set[int]:
        """The applied versions, each checked against its file (see the module doc)."""
        known = {m.version: m for m in migrations}
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", LEDGER)
        has_checksum = any(r["column_name"] == "checksum" for r in columns)
        query = f"SELECT version, name, {'checksum' if has_checksum else 'NULL AS checksum'} FROM {LEDGER}"
        applied = set()
        for row in await conn.fetch(query + " ORDER BY version"):
            m = known.get(row["version"])
            if m is None:
                raise MigrationError(f"the database has migration {row['version']:04d} ({row['name']}), which this "
                                     "build does not know: it is older than the database")
            name = _NUMBERED.sub("", row["name"])  # ledgers from before this runner stored the file stem
            if name not in m.files:
                raise MigrationError(f"migration {m.version:04d} was applied as {row['name']!r}, which has no file")
            expected = checksum(m.files[name])
            if row["checksum"] is None:
                if adopt:
                    await conn.execute(f"UPDATE {LEDGER} SET checksum = $2 WHERE version = $1", m.version, expected)
                    log.info("migration checksum recorded", extra={"version": m.version, "file": m.files[name].name})
            elif row["checksum"] != expected:
                raise MigrationError(
                    f"migration {m.label(name)} ({m.files[name].name}) was changed after it was applied to this "
                    "database: restore the file as it was and put the change in a new migration")
            applied.add(m.version)
        return applied
