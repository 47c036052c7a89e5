"""SQL of the rulebook: the current rules, their audit trail, and the revision replicas poll.

Every change is one transaction that appends to ``rule_changes`` (whose serial is the revision)
and writes the rule with that revision, so the highest revision always names the rulebook's state.
``RuleStore`` is what the rulebook calls: it runs these on the ingest store's pool, guarded like
every store (an unreachable database is UNAVAILABLE with retry advice).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from services.runtime.store_errors import guard

from . import dry_run
from .detect import Percentile

# Changes take this lock, so revisions commit in order: a replica that has seen revision n has
# seen every change up to n. It also makes seeding run once, whichever replica starts first.
_LOCK = 0x72756C65  # "rule"
LOCK = "SELECT pg_advisory_xact_lock($1)"

REVISION = "SELECT coalesce(max(revision), 0) FROM rule_changes"
LOAD = "SELECT name, definition, revision FROM detection_rules ORDER BY name"
GET = "SELECT definition, revision FROM detection_rules WHERE name = $1 FOR UPDATE"
APPEND_CHANGE = """
INSERT INTO rule_changes (name, kind, subject, before, after) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
RETURNING revision"""
INSERT_RULE = """
INSERT INTO detection_rules (name, definition, revision) VALUES ($1, $2::jsonb, $3)
ON CONFLICT (name) DO NOTHING"""
UPDATE_RULE = "UPDATE detection_rules SET definition = $2::jsonb, revision = $3, updated_at = now() WHERE name = $1"
CHANGES = """
SELECT revision, name, kind, subject, changed_at, before, after FROM rule_changes
WHERE ($1::text IS NULL OR name = $1) AND revision < $2
ORDER BY revision DESC LIMIT $3"""


class StoredRule(NamedTuple):
    name: str
    definition: dict[str, Any]
    revision: int


class Change(NamedTuple):
    revision: int
    name: str
    kind: str
    subject: str
    changed_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any]


class Exists(Exception):
    pass


class Missing(Exception):
    pass


class Stale(Exception):
    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(value: Any) -> Any:
    return None if value is None else json.loads(value)


async def revision(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(REVISION)


async def load(conn: asyncpg.Connection) -> tuple[int, list[StoredRule]]:
    """The rulebook and its revision, read in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rev = await conn.fetchval(REVISION)
        rows = await conn.fetch(LOAD)
    return rev, [StoredRule(r["name"], _load(r["definition"]), r["revision"]) for r in rows]


async def seed(conn: asyncpg.Connection, definitions: list[dict[str, Any]]) -> bool:
    """Store the rules file's rules when the rulebook has never held any; True when it did."""
    async with conn.transaction():
        await conn.execute(LOCK, _LOCK)
        if await conn.fetchval(REVISION):
            return False
        for d in definitions:
            await _create(conn, d["name"], d, "seed")
    return True


async def create(conn: asyncpg.Connection, name: str, definition: dict[str, Any], subject: str) -> int:
    async with conn.transaction():
        await conn.execute(LOCK, _LOCK)
        return await _create(conn, name, definition, subject)


async def _create(conn: asyncpg.Connection, name: str, definition: dict[str, Any], subject: str) -> int:
    if await conn.fetchrow(GET, name) is not None:
        raise Exists(name)
    rev = await conn.fetchval(APPEND_CHANGE, name, "create", subject, None, _json(definition))
    if await conn.execute(INSERT_RULE, name, _json(definition), rev) == "INSERT 0 0":
        raise Exists(name)  # created concurrently: the append rolls back with the transaction
    return rev


async def update(conn: asyncpg.Connection, name: str, definition: dict[str, Any], subject: str,
                 expected_revision: int = 0) -> int:
    async with conn.transaction():
        await conn.execute(LOCK, _LOCK)
        row = await conn.fetchrow(GET, name)
        if row is None:
            raise Missing(name)
        if expected_revision and row["revision"] != expected_revision:
            raise Stale(row["revision"])
        rev = await conn.fetchval(APPEND_CHANGE, name, "update", subject, row["definition"], _json(definition))
        await conn.execute(UPDATE_RULE, name, _json(definition), rev)
    return rev


async def changes(conn: asyncpg.Connection, name: str | None, before_revision: int, limit: int) -> list[Change]:
    rows = await conn.fetch(CHANGES, name, before_revision, limit)
    return [Change(r["revision"], r["name"], r["kind"], r["subject"], r["changed_at"],
                   _load(r["before"]), _load(r["after"])) for r in rows]


@guard("ingest database")
class RuleStore:
    def __init__(self, store: Any) -> None:
        self.store = store  # the IngestStore: its pool exists once it is open

    async def revision(self) -> int:
        async with self.store.pool.acquire() as conn:
            return await revision(conn)

    async def load(self) -> tuple[int, list[StoredRule]]:
        async with self.store.pool.acquire() as conn:
            return await load(conn)

    async def seed(self, definitions: list[dict[str, Any]]) -> bool:
        async with self.store.pool.acquire() as conn:
            return await seed(conn, definitions)

    async def create(self, name: str, definition: dict[str, Any], subject: str) -> int:
        async with self.store.pool.acquire() as conn:
            return await create(conn, name, definition, subject)

    async def update(self, name: str, definition: dict[str, Any], subject: str, expected_revision: int) -> int:
        async with self.store.pool.acquire() as conn:
            return await update(conn, name, definition, subject, expected_revision)

    async def changes(self, name: str | None, before_revision: int, limit: int) -> list[Change]:
        async with self.store.pool.acquire() as conn:
            return await changes(conn, name, before_revision, limit)

    async def replay_windowed(self, measure: str, start: datetime, action_type: str | None, window: float,
                              limit: float, max_players: int) -> dry_run.Result:
        async with self.store.pool.acquire() as conn:
            return await dry_run.windowed(conn, measure, start, action_type, window, limit, max_players)

    async def replay_impossible(self, start: datetime, action_type: str | None, min_value: float | None,
                                max_value: float | None, max_players: int) -> dry_run.Result:
        async with self.store.pool.acquire() as conn:
            return await dry_run.impossible(conn, start, action_type, min_value, max_value, max_players)

    async def percentile(self, pct: float, window: float, action_type: str | None) -> Percentile:
        return await self.store.percentile(pct, window, action_type)
