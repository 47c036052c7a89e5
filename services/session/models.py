"""Domain records of the session service (plain data; no grpc, no Redis)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionClaims:
    session_id: str
    subject: str
    role: str
    attributes: dict[str, str]
    create_ms: int
    expire_ms: int
    max_expire_ms: int
    last_used_ms: int


@dataclass(frozen=True)
class BanSource:
    """``kind`` is "rule" (rule, violation_ids, service) or "admin" (admin)."""

    kind: str
    rule: str = ""
    violation_ids: tuple[str, ...] = ()
    service: str = ""
    admin: str = ""

    @property
    def actor(self) -> str:
        return f"rule:{self.rule}" if self.kind == "rule" else self.admin


@dataclass(frozen=True)
class BanRecord:
    ban_id: str
    subject: str
    reason: str
    source: BanSource
    create_ms: int
    expire_ms: int | None  # None: permanent

    @property
    def permanent(self) -> bool:
        return self.expire_ms is None

    def active_at(self, now_ms: int) -> bool:
        return self.expire_ms is None or self.expire_ms > now_ms


@dataclass(frozen=True)
class BanEvent:
    event_id: str
    banned: bool  # False: unbanned
    ban: BanRecord
    actor: str
    reason: str
    time_ms: int


@dataclass(frozen=True)
class Page:
    items: list = field(default_factory=list)
    next_cursor: str = ""  # store-level cursor; the domain wraps it in a page token
