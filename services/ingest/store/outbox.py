"""SQL of the ban outbox: bans the rules decided, kept until the session service acknowledges them.

Rows are written in the violation's transaction (``detect.record``), so a committed violation that
asked for a ban always has its ban on the way. Delivery leases rows (``next_attempt_at`` moved past
the call's deadline) instead of holding a transaction open during the RPC; replicas skip each
other's leased rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

INSERT = """
INSERT INTO ban_outbox (violation_id, player_id, rule, request)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[])
ON CONFLICT DO NOTHING"""

LEASE = """
UPDATE ban_outbox SET next_attempt_at = now() + make_interval(secs => $2), attempts = attempts + 1
WHERE violation_id IN (
    SELECT violation_id FROM ban_outbox WHERE NOT failed AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING violation_id, player_id, request, attempts"""

DELIVERED = "DELETE FROM ban_outbox WHERE violation_id = $1"

RETRY = """
UPDATE ban_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = left($3, 500)
WHERE violation_id = $1"""

REFUSED = "UPDATE ban_outbox SET failed = true, last_error = left($2, 500) WHERE violation_id = $1"

BACKLOG = """
SELECT count(*) FILTER (WHERE NOT failed) AS pending, count(*) FILTER (WHERE failed) AS failed,
       min(created_at) FILTER (WHERE NOT failed) AS oldest
FROM ban_outbox"""


class Leased(NamedTuple):
    violation_id: int
    player_id: str
    request: bytes
    attempts: int


class Backlog(NamedTuple):
    pending: int  # bans not yet acknowledged by the session service
    failed: int  # bans it refused for good (kept for people to look at)
    oldest: datetime | None


async def insert(conn: asyncpg.Connection, items: Sequence[tuple[int, str, str, bytes]]) -> None:
    await conn.execute(INSERT, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
                       [i[3] for i in items])


async def lease(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Leased]:
    return [Leased(*r.values()) for r in await conn.fetch(LEASE, limit, lease_seconds)]


async def delivered(conn: asyncpg.Connection, violation_id: int) -> None:
    await conn.execute(DELIVERED, violation_id)


async def retry(conn: asyncpg.Connection, violation_id: int, after_seconds: float, error: str) -> None:
    await conn.execute(RETRY, violation_id, after_seconds, error)


async def refused(conn: asyncpg.Connection, violation_id: int, error: str) -> None:
    await conn.execute(REFUSED, violation_id, error)


async def backlog(conn: asyncpg.Connection) -> Backlog:
    return Backlog(*(await conn.fetchrow(BACKLOG)).values())
