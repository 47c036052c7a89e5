"""Session records in Redis: claims hash, token-hash index, per-subject and expiry indexes."""

from __future__ import annotations

import json

import redis.asyncio as redis

from services.runtime.store_errors import guard

from ..models import Page, SessionClaims
from . import keys, scripts
from .client import STORE


def _member(create_ms: int, session_id: str) -> str:
    return f"{create_ms:015d}:{session_id}"


def _claims(session_id: str, flat: list) -> SessionClaims:
    h = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    return _from_hash(session_id, h)


def _from_hash(session_id: str, h: dict[str, str]) -> SessionClaims:
    return SessionClaims(
        session_id=session_id, subject=h["sub"], role=h["role"], attributes=json.loads(h["attrs"]),
        create_ms=int(h["ctime"]), expire_ms=int(h["exp"]), max_expire_ms=int(h["max"]),
        last_used_ms=int(h["used"]),
    )


@guard(STORE)
class SessionStore:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self._create = r.register_script(scripts.CREATE_SESSION)
        self._validate = r.register_script(scripts.VALIDATE_SESSION)
        self._refresh = r.register_script(scripts.REFRESH_SESSION)
        self._revoke = r.register_script(scripts.REVOKE_SESSION)
        self._revoke_subject = r.register_script(scripts.REVOKE_SUBJECT)
        self._sweep = r.register_script(scripts.SWEEP_SESSIONS)

    async def create(self, claims: SessionClaims, ttl_ms: int, token_hash: str) -> bool:
        """Stores the session unless its subject is banned (checked atomically); False if banned."""
        c = claims
        member = _member(c.create_ms, c.session_id)
        created = await self._create(
            keys=[keys.ban(c.subject), keys.session(c.session_id), keys.session_token(token_hash),
                  keys.subject_sessions(c.subject), keys.SESSION_EXPIRY],
            args=[c.create_ms, c.session_id, c.subject, c.role, json.dumps(c.attributes), c.expire_ms,
                  c.max_expire_ms, ttl_ms, token_hash, member],
        )
        return created == 1

    async def validate(self, token_hash: str, now_ms: int, sliding: bool) -> SessionClaims | None:
        found = await self._validate(keys=[keys.session_token(token_hash)], args=[now_ms, int(sliding)])
        return None if found is None else _claims(found[0].decode(), found[1])

    async def refresh(self, token_hash: str, now_ms: int, ttl_ms: int, new_token_hash: str) -> SessionClaims | None:
        found = await self._refresh(keys=[keys.session_token(token_hash)], args=[now_ms, ttl_ms, new_token_hash])
        return None if found is None else _claims(found[0].decode(), found[1])

    async def revoke(self, now_ms: int, session_id: str = "", token_hash: str = "") -> bool:
        return await self._revoke(args=[now_ms, session_id, token_hash]) == 1

    async def revoke_subject(self, subject: str, now_ms: int) -> int:
        return int(await self._revoke_subject(args=[now_ms, subject]))

    async def list(self, subject: str, now_ms: int, limit: int, cursor: str) -> Page:
        """Live sessions newest first; ``cursor`` is the last member of the previous page."""
        top = f"({cursor}" if cursor else "+"
        members = await self.r.zrange(keys.subject_sessions(subject), top, "-", desc=True, bylex=True,
                                      offset=0, num=limit + 1)
        page, more = members[:limit], len(members) > limit
        async with self.r.pipeline(transaction=False) as pipe:
            for m in page:
                pipe.hgetall(keys.session(m.decode()[16:]))
            hashes = await pipe.execute()
        items = []
        for m, h in zip(page, hashes):
            if h and int(h[b"exp"]) > now_ms:
                items.append(_from_hash(m.decode()[16:], {k.decode(): v.decode() for k, v in h.items()}))
        return Page(items, page[-1].decode() if more else "")

    async def sweep(self, now_ms: int, batch: int = 500) -> int:
        return int(await self._sweep(args=[now_ms, batch]))

    async def count_active(self, now_ms: int) -> int:
        """Sessions not expired at ``now_ms`` (one ZCOUNT of the sweep index)."""
        return int(await self.r.zcount(keys.SESSION_EXPIRY, f"({now_ms}", "+inf"))
