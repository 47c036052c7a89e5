"""PostgreSQL / TimescaleDB: pg_dump custom format, pg_restore, and what the doctor and the manifest
need to know about a database (version, extensions, whether it is empty)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.runtime.cli import UsageError

from . import tools

#: Extensions worth reporting (TimescaleDB changes how a restore must run; hll is optional).
WATCHED_EXTENSIONS = ("timescaledb", "hll")
USER_TABLES = """
SELECT count(*) FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE '\\_timescaledb%'
"""


#: The public schema as PostgreSQL 15 creates it (owned by the database owner, usable by everyone).
RESET_PUBLIC = ("DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public",
                "ALTER SCHEMA public OWNER TO pg_database_owner", "GRANT USAGE ON SCHEMA public TO PUBLIC")


@dataclass(frozen=True)
class DatabaseInfo:
    version: str
    extensions: dict[str, str]  # name -> version
    tables: int


async def info(url: str) -> DatabaseInfo:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        version = await conn.fetchval("SHOW server_version")
        extensions = {r["extname"]: r["extversion"] for r in await conn.fetch(
            "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql'")}
        return DatabaseInfo(version, extensions, await conn.fetchval(USER_TABLES))
    finally:
        await conn.close()


def dump(url: str, out: Path, pg_bin: str = "") -> None:
    tools.run([tools.find("pg_dump", pg_bin), "--format=custom", "--no-password", f"--file={out}", f"--dbname={url}"])


def dump_version(pg_bin: str = "") -> str:
    return tools.version([tools.find("pg_dump", pg_bin), "--version"])


async def restore(url: str, path: Path, *, name: str, force: bool, timescale: bool, pg_bin: str = "") -> None:
    """Restore a custom-format dump into ``url``. Objects are owned by the connecting role
    (--no-owner); grants are restored, so the roles they name (e.g. the query service's read-only
    role) must exist on the target. ``force``: the public schema is emptied first. TimescaleDB: the
    documented pre/post-restore calls."""
    target = await info(url)
    if target.tables and not force:
        raise UsageError(f"{name}: the target database is not empty ({target.tables} tables): restore into an "
                         "empty database, or pass --force to replace the objects the backup holds")
    argv = [tools.find("pg_restore", pg_bin), "--no-owner", "--no-password", f"--dbname={url}"]
    if force and target.tables:
        # pg_restore --clean cannot drop partitions' inherited constraints: start from an empty schema.
        await _execute(url, *(["DROP EXTENSION IF EXISTS timescaledb CASCADE"] if "timescaledb" in target.extensions
                              else []), *RESET_PUBLIC)
    if timescale:  # TimescaleDB's documented restore: not one transaction, between pre and post calls
        argv.append("--exit-on-error")
        await _execute(url, "CREATE EXTENSION IF NOT EXISTS timescaledb", "SELECT timescaledb_pre_restore()")
    else:
        argv.append("--single-transaction")  # all or nothing: a failed restore leaves the target as it was
    try:
        tools.run([*argv, str(path)])
    finally:
        if timescale:
            await _execute(url, "SELECT timescaledb_post_restore()")


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
