"""Login sessions: create, validate (optionally sliding), refresh/rotate, revoke, list.

Expiry is decided against the injected clock on every read; Redis TTLs are never used for
sessions, so memory pressure cannot evict one (see KEYS.md). Creating a session for a banned
subject is refused in the same atomic step that stores it, so a concurrent Ban cannot race it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.runtime.errors import FailedPrecondition, Unauthenticated

from . import tokens
from .clock import Clock
from .models import Page, SessionClaims
from .store.sessions import SessionStore
from .validation import Violations, cursor_member, member_token

ROLE = re.compile(r"[a-z0-9_]+")
MIN_TTL_MS, MAX_TTL_MS = 60_000, 30 * 86400_000

# One error for unknown, expired and revoked tokens: a caller learns nothing by probing.
INVALID_TOKEN = "session token invalid or expired"


@dataclass(frozen=True)
class Created:
    token: str
    session: SessionClaims


class Sessions:
    def __init__(self, store: SessionStore, clock: Clock, default_ttl_ms: int, max_lifetime_ms: int) -> None:
        self.store = store
        self.clock = clock
        self.default_ttl_ms = default_ttl_ms
        self.max_lifetime_ms = max_lifetime_ms

    async def create(self, subject: str, role: str, attributes: dict[str, str], ttl_ms: int | None) -> Created:
        v = Violations()
        v.text("subject", subject, 1, 128)
        v.text("role", role, 1, 32, ROLE, "[a-z0-9_]+")
        v.attributes("attributes", attributes, 32, 256)
        _check_ttl(v, "ttl", ttl_ms)
        v.raise_if_any()
        ttl = ttl_ms or self.default_ttl_ms
        now = self.clock.now_ms()
        max_exp = now + self.max_lifetime_ms
        claims = SessionClaims(session_id=tokens.new_id(), subject=subject, role=role, attributes=dict(attributes),
                               create_ms=now, expire_ms=min(now + ttl, max_exp), max_expire_ms=max_exp,
                               last_used_ms=now)
        token = tokens.new_token()
        if not await self.store.create(claims, ttl, tokens.token_hash(token)):
            raise FailedPrecondition(f"subject {subject!r} is banned")
        return Created(token, claims)

    async def validate(self, token: str, sliding: bool) -> SessionClaims:
        check_token(token)
        claims = await self.store.validate(tokens.token_hash(token), self.clock.now_ms(), sliding)
        if claims is None:
            raise Unauthenticated(INVALID_TOKEN)
        return claims

    async def refresh(self, token: str, ttl_ms: int | None, rotate: bool) -> tuple[SessionClaims, str]:
        v = Violations()
        v.text("token", token, 1, 256)
        _check_ttl(v, "ttl", ttl_ms)
        v.raise_if_any()
        new_token = tokens.new_token() if rotate else ""
        claims = await self.store.refresh(tokens.token_hash(token), self.clock.now_ms(), ttl_ms or 0,
                                          tokens.token_hash(new_token) if rotate else "")
        if claims is None:
            raise Unauthenticated(INVALID_TOKEN)
        return claims, new_token

    async def revoke(self, session_id: str = "", token: str = "") -> bool:
        v = Violations()
        if session_id:
            v.text("session_id", session_id, 1, 64)
        elif token:
            v.text("token", token, 1, 256)
        else:
            v.add("target", "set exactly one of session_id or token")
        v.raise_if_any()
        return await self.store.revoke(self.clock.now_ms(), session_id=session_id,
                                       token_hash=tokens.token_hash(token) if token and not session_id else "")

    async def revoke_subject(self, subject: str) -> int:
        v = Violations()
        v.text("subject", subject, 1, 128)
        v.raise_if_any()
        return await self.store.revoke_subject(subject, self.clock.now_ms())

    async def list(self, subject: str, page_size: int, page_token: str) -> tuple[list[SessionClaims], str]:
        v = Violations()
        v.text("subject", subject, 1, 128)
        size = v.page_size("page_size", page_size, 50, 100)
        cursor = v.page_token(page_token, "session.ListSessions", {"subject": subject})
        v.raise_if_any()
        page: Page = await self.store.list(subject, self.clock.now_ms(), size, cursor_member(cursor))
        return page.items, member_token("session.ListSessions", {"subject": subject}, page.next_cursor)

    async def sweep(self) -> int:
        return await self.store.sweep(self.clock.now_ms())

    async def active(self) -> int:
        return await self.store.count_active(self.clock.now_ms())


def _check_ttl(v: Violations, field: str, ttl_ms: int | None) -> None:
    if ttl_ms is not None and not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
        v.add(field, "must be 1 min..30 days")


def check_token(token: str) -> None:
    v = Violations()
    v.text("token", token, 1, 256)
    v.raise_if_any()
