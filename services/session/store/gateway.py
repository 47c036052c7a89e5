"""The gateway's per-request decision in Redis: one script, one round trip (see GATEWAY_ADMIT)."""

from __future__ import annotations

from typing import NamedTuple

import redis.asyncio as redis

from services.runtime.store_errors import guard

from . import keys, scripts
from .client import STORE

ADMITTED, INVALID_SESSION, NO_SUCH_PATH, NOT_PERMITTED, OVER_LIMIT = range(5)


class Admission(NamedTuple):
    code: int
    session_id: str = ""
    subject: str = ""
    role: str = ""
    retry_after_ms: int = 0


@guard(STORE)
class GatewayStore:
    def __init__(self, r: redis.Redis) -> None:
        self._admit = r.register_script(scripts.GATEWAY_ADMIT)
        self._limit_prefix = keys.rate_limit("gateway:")

    async def admit(self, token_hash: str, now_ms: int, needed: int, policy: str) -> Admission:
        """``policy`` is "<role> <access bits> <limit> <window ms> ..." (limit 0: unmetered)."""
        out = await self._admit(keys=[keys.session_token(token_hash)],
                                args=[now_ms, needed, policy, self._limit_prefix])
        if len(out) == 1:
            return Admission(out[0])
        return Admission(out[0], out[1].decode(), out[2].decode(), out[3].decode(), int(out[4]) if len(out) > 4 else 0)
