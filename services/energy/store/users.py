"""users table."""

from __future__ import annotations

import asyncpg

from services.runtime import AlreadyExists
from services.runtime.store_errors import guard

from ..models import User
from . import STORE

_COLS = "id, username, email, role, created_at"


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["username"], row["email"], row["role"], row["created_at"])


@guard(STORE)
class UserStore:
    def __init__(self, pool) -> None:
        self._pool = pool

    async def insert(self, username: str, email: str, password_hash: str, role: str) -> User:
        try:
            row = await self._pool.pool.fetchrow(
                f"INSERT INTO users (username, email, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING {_COLS}",
                username, email, password_hash, role)
        except asyncpg.UniqueViolationError:
            # Same message for both, so registration does not reveal which one is taken.
            raise AlreadyExists("username or email already registered") from None
        return _user(row)

    async def credentials(self, username: str) -> tuple[User, str] | None:
        row = await self._pool.pool.fetchrow(f"SELECT {_COLS}, password_hash FROM users WHERE username = $1", username)
        return None if row is None else (_user(row), row["password_hash"])

    async def set_hash(self, user_id: int, password_hash: str) -> None:
        await self._pool.pool.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)

    async def get(self, user_id: int) -> User | None:
        row = await self._pool.pool.fetchrow(f"SELECT {_COLS} FROM users WHERE id = $1", user_id)
        return None if row is None else _user(row)

    async def list(self, role: str | None, after_id: int, limit: int) -> list[User]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_COLS} FROM users WHERE id > $1 AND ($2::text IS NULL OR role = $2) ORDER BY id LIMIT $3",
            after_id, role, limit)
        return [_user(r) for r in rows]

    async def set_role(self, user_id: int, role: str) -> User | None:
        row = await self._pool.pool.fetchrow(f"UPDATE users SET role = $2 WHERE id = $1 RETURNING {_COLS}", user_id, role)
        return None if row is None else _user(row)
