"""The ban list: ban (revoking the subject's sessions), unban, is-banned, batch check, list, history.

A ban without a duration is permanent; a timed ban stops counting when the injected clock
passes its expiry (no Redis TTL; the sweep tidies expired entries later).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tokens
from .clock import Clock
from .models import BanEvent, BanRecord, BanSource
from .store.bans import BanStore
from .validation import Violations, cursor_member, member_token

MIN_BAN_MS, MAX_BAN_MS = 60_000, 3650 * 86400_000
MAX_BATCH = 1000


@dataclass(frozen=True)
class BanResult:
    ban: BanRecord
    replayed: bool
    revoked_sessions: int


class Bans:
    def __init__(self, store: BanStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def ban(self, subject: str, reason: str, source: BanSource | None, duration_ms: int | None,
                  permanent: bool, idempotency_key: str) -> BanResult:
        v = Violations()
        v.text("subject", subject, 1, 128)
        v.text("reason", reason, 1, 1024)
        _check_source(v, source)
        if permanent and duration_ms is not None:
            v.add("length", "set exactly one of duration or permanent")
        elif not permanent and duration_ms is None:
            v.add("length", "set duration, or permanent=true")
        elif duration_ms is not None and not MIN_BAN_MS <= duration_ms <= MAX_BAN_MS:
            v.add("duration", "must be 1 min..3650 days")
        if idempotency_key:
            v.text("idempotency_key", idempotency_key, 1, 64)
        v.raise_if_any()
        now = self.clock.now_ms()
        record = BanRecord(ban_id=tokens.new_id(), subject=subject, reason=reason, source=source,
                           create_ms=now, expire_ms=None if permanent else now + duration_ms)
        active, replayed, revoked = await self.store.ban(record, now, tokens.new_id(), idempotency_key)
        return BanResult(active, replayed, revoked)

    async def unban(self, subject: str, unbanned_by: str, reason: str) -> BanRecord | None:
        v = Violations()
        v.text("subject", subject, 1, 128)
        v.text("unbanned_by", unbanned_by, 1, 128)
        v.text("reason", reason, 1, 1024)
        v.raise_if_any()
        return await self.store.unban(subject, self.clock.now_ms(), tokens.new_id(), unbanned_by, reason)

    async def is_banned(self, subject: str) -> BanRecord | None:
        v = Violations()
        v.text("subject", subject, 1, 128)
        v.raise_if_any()
        (stored,) = await self.store.get([subject])
        return stored if stored is not None and stored.active_at(self.clock.now_ms()) else None

    async def check(self, subjects: list[str]) -> list[BanRecord | None]:
        """Active bans for up to 1,000 subjects, in request order (one Redis round trip)."""
        v = Violations()
        if not 1 <= len(subjects) <= MAX_BATCH:
            v.add("subjects", f"must have 1..{MAX_BATCH} entries (got {len(subjects)})")
        for i, s in enumerate(subjects):
            if not 1 <= len(s.encode()) <= 128:  # a batch of 1,000 only names the bad entries
                v.text(f"subjects[{i}]", s, 1, 128)
        v.raise_if_any()
        now = self.clock.now_ms()
        return [b if b is not None and b.active_at(now) else None for b in await self.store.get(subjects)]

    async def list(self, page_size: int, page_token: str) -> tuple[list[BanRecord], str]:
        v = Violations()
        size = v.page_size("page_size", page_size, 100, 1000)
        cursor = v.page_token(page_token, "session.ListBans", {})
        v.raise_if_any()
        page = await self.store.list_active(self.clock.now_ms(), size, cursor_member(cursor))
        return page.items, member_token("session.ListBans", {}, page.next_cursor)

    async def history(self, subject: str, page_size: int, page_token: str) -> tuple[list[BanEvent], str]:
        v = Violations()
        v.text("subject", subject, 1, 128)
        size = v.page_size("page_size", page_size, 100, 500)
        cursor = v.page_token(page_token, "session.GetBanHistory", {"subject": subject})
        v.raise_if_any()
        page = await self.store.history(subject, self.clock.now_ms(), size, cursor_member(cursor))
        return page.items, member_token("session.GetBanHistory", {"subject": subject}, page.next_cursor)

    async def sweep(self) -> int:
        return await self.store.sweep(self.clock.now_ms())

    async def active(self) -> int:
        return await self.store.count_active(self.clock.now_ms())


def _check_source(v: Violations, source: BanSource | None) -> None:
    if source is None:
        v.add("source", "set exactly one of rule_source or admin_source")
    elif source.kind == "rule":
        v.text("rule_source.rule", source.rule, 1, 64)
        if not 1 <= len(source.violation_ids) <= 100:
            v.add("rule_source.violation_ids", "must have 1..100 ids")
        for i, vid in enumerate(source.violation_ids):
            v.text(f"rule_source.violation_ids[{i}]", vid, 1, 64)
        v.text("rule_source.service", source.service, 0, 64)
    else:
        v.text("admin_source.admin", source.admin, 1, 128)
