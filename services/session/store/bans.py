"""The ban list in Redis: active ban per subject, list and expiry indexes, per-subject history.

Active bans are JSON strings without a Redis TTL (expiry decided on read); a ban, its history
event and the revocation of the subject's sessions happen in one Lua script.
"""

from __future__ import annotations

import json

import redis.asyncio as redis
from redis.exceptions import ResponseError

from services.runtime.errors import Unavailable
from services.runtime.store_errors import guard

from ..models import BanEvent, BanRecord, BanSource, Page
from . import keys, scripts
from .client import STORE

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000


def _ban_json(b: BanRecord) -> str:
    s = b.source
    return json.dumps({
        "ban_id": b.ban_id, "subject": b.subject, "reason": b.reason,
        "source": {"kind": s.kind, "rule": s.rule, "violation_ids": list(s.violation_ids), "service": s.service, "admin": s.admin},
        "create_ms": b.create_ms, "expire_ms": b.expire_ms, "permanent": b.permanent,
        "index_member": _index_member(b),
    }, separators=(",", ":"))


def _ban(raw: bytes | str | dict) -> BanRecord:
    d = json.loads(raw) if not isinstance(raw, dict) else raw
    s = d["source"]
    return BanRecord(
        ban_id=d["ban_id"], subject=d["subject"], reason=d["reason"],
        source=BanSource(kind=s["kind"], rule=s["rule"], violation_ids=tuple(s["violation_ids"]), service=s["service"], admin=s["admin"]),
        create_ms=int(d["create_ms"]), expire_ms=None if d["permanent"] else int(d["expire_ms"]),
    )


def _index_member(b: BanRecord) -> str:
    return f"{b.create_ms:015d}:{b.ban_id}:{b.subject}"


def _event(member: bytes) -> tuple[BanEvent, str]:
    """A history member "<time>:<seq>:<event_id>:<json>" as (event, its cursor prefix)."""
    time_ms, seq, event_id, body = member.decode().split(":", 3)
    d = json.loads(body)
    event = BanEvent(event_id=event_id, banned=d["type"] == "banned", ban=_ban(d["ban"]), actor=d["actor"],
                     reason=d["reason"], time_ms=int(time_ms))
    return event, f"{time_ms}:{seq}:{event_id}:"


@guard(STORE)
class BanStore:
    def __init__(self, r: redis.Redis, history_ms: int, waitaof: bool) -> None:
        self.r = r
        self.history_ms = history_ms
        self.waitaof = waitaof
        self._ban = r.register_script(scripts.BAN)
        self._unban = r.register_script(scripts.UNBAN)
        self._sweep = r.register_script(scripts.SWEEP_BANS)
        self._get_bans = r.register_script(scripts.GET_BANS)

    def _keys(self, subject: str) -> list[str]:
        return [keys.ban(subject), keys.BAN_INDEX, keys.BAN_EXPIRY, keys.ban_history(subject)]

    async def ban(self, b: BanRecord, now_ms: int, event_id: str, idempotency_key: str) -> tuple[BanRecord, bool, int]:
        """Applies ``b`` (the later-ending ban wins); returns (active ban, replayed, sessions revoked)."""
        event = f"{event_id}:" + json.dumps(
            {"type": "banned", "actor": b.source.actor, "reason": b.reason, "ban": json.loads(_ban_json(b))},
            separators=(",", ":"))
        idem = keys.ban_idempotency(b.subject, idempotency_key) if idempotency_key else ""
        active, replayed, revoked = await self._ban(
            keys=self._keys(b.subject),
            args=[now_ms, _ban_json(b), -1 if b.permanent else b.expire_ms, _index_member(b), event,
                  f"{now_ms - self.history_ms:015d}:", b.subject, idem, IDEMPOTENCY_TTL_MS, f"{now_ms:015d}"],
        )
        if not replayed:
            await self._durable()
        return _ban(active), bool(replayed), int(revoked)

    async def unban(self, subject: str, now_ms: int, event_id: str, actor: str, reason: str) -> BanRecord | None:
        prefix = f"{event_id}:" + json.dumps(
            {"type": "unbanned", "actor": actor, "reason": reason}, separators=(",", ":"))[:-1] + ',"ban":'
        lifted = await self._unban(keys=self._keys(subject),
                                   args=[now_ms, prefix, f"{now_ms - self.history_ms:015d}:", subject, f"{now_ms:015d}"])
        if lifted is None:
            return None
        await self._durable()
        return _ban(lifted)

    async def _durable(self) -> None:
        """Acknowledged = durable: wait until the AOF write is fsynced (Redis >= 7.2)."""
        if not self.waitaof:
            return
        try:
            local, _ = await self.r.execute_command("WAITAOF", 1, 0, 1000)
        except ResponseError as exc:  # older Redis, or AOF off: durability is the deployment's
            if "unknown command" in str(exc).lower() or "appendonly" in str(exc).lower():
                self.waitaof = False
                return
            raise
        if int(local) < 1:
            raise Unavailable("ban not yet durable in the session store", retry_after=1.0)

    async def get(self, subjects: list[str]) -> list[BanRecord | None]:
        """Stored bans (possibly expired) for ``subjects``, in order: one round trip."""
        if len(subjects) == 1:
            raw = await self.r.get(keys.ban(subjects[0]))
            return [None if raw is None else _ban(raw)]
        found = await self._get_bans(args=[json.dumps(subjects, ensure_ascii=False), keys.ban("")])
        bans: list[BanRecord | None] = [None] * len(subjects)
        for i in range(0, len(found), 2):
            bans[int(found[i]) - 1] = _ban(found[i + 1])
        return bans

    async def list_active(self, now_ms: int, limit: int, cursor: str) -> Page:
        top = f"({cursor}" if cursor else "+"
        members = await self.r.zrange(keys.BAN_INDEX, top, "-", desc=True, bylex=True, offset=0, num=limit + 1)
        page, more = members[:limit], len(members) > limit
        subjects = [m.decode().split(":", 2)[2] for m in page]
        bans = await self.get(subjects) if subjects else []
        items = [b for m, b in zip(page, bans) if b and b.active_at(now_ms) and _index_member(b) == m.decode()]
        return Page(items, page[-1].decode() if more else "")

    async def history(self, subject: str, now_ms: int, limit: int, cursor: str) -> Page:
        top = f"({cursor}" if cursor else "+"
        bottom = f"[{now_ms - self.history_ms:015d}:"
        members = await self.r.zrange(keys.ban_history(subject), top, bottom, desc=True, bylex=True,
                                      offset=0, num=limit + 1)
        page, more = members[:limit], len(members) > limit
        events = [_event(m) for m in page]
        return Page([e for e, _ in events], events[-1][1] if more else "")

    async def sweep(self, now_ms: int, batch: int = 500) -> int:
        return int(await self._sweep(keys=[keys.BAN_INDEX, keys.BAN_EXPIRY], args=[now_ms, batch, keys.ban("")]))

    async def count_active(self, now_ms: int) -> int:
        """Bans in force at ``now_ms``: the index, less timed bans expired but not yet swept."""
        total = await self.r.zcard(keys.BAN_INDEX)
        return int(total) - int(await self.r.zcount(keys.BAN_EXPIRY, "-inf", now_ms))
