"""asyncpg pools for the services that own a PostgreSQL database."""

from __future__ import annotations

import asyncpg

from .errors import Unavailable


class LazyPool:
    """A pool created on first successful connect, so a service can start before its
    database does (health stays NOT_SERVING meanwhile)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 statement_timeout_ms: int | None = None, read_only: bool = False,
                 application_name: str = "banhammer", keep_session: bool = False) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        # keep_session: skip asyncpg's per-release reset round trip (RESET ALL, UNLISTEN, ...), for a
        # service that sets no session state (no LISTEN, SET or session advisory locks).
        self._reset = _keep_session if keep_session else None
        settings = {"application_name": application_name}
        if statement_timeout_ms:
            settings["statement_timeout"] = str(statement_timeout_ms)
        if read_only:
            settings["default_transaction_read_only"] = "on"
        self.server_settings = settings
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> asyncpg.Pool:
        if self._pool is None:
            extra = {"reset": self._reset} if self._reset else {}
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size,
                server_settings=self.server_settings, command_timeout=60, **extra,
            )
        return self._pool

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable("database not connected yet", retry_after=1.0)
        return self._pool

    async def ping(self) -> None:
        pool = await self.open()
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool ``reset`` that does nothing (see ``keep_session``)."""
