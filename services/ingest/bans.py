"""Client of banhammer.session.v1.BanService: rules that ban send the ban there.

Each violation's ban carries an idempotency key derived from its violation id, so a retried call
never creates a second ban or history event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import grpc
from google.protobuf import duration_pb2

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc

from .rules import Rule
from .store.detect import Recorded

log = logging.getLogger("banhammer.ingest.bans")

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


def ban_request(rule: Rule, violation: Recorded, evidence: dict[str, Any]) -> ban_pb2.BanRequest:
    facts = ", ".join(f"{k}={v}" for k, v in sorted(evidence.items()))
    req = ban_pb2.BanRequest(
        subject=violation.player_id,
        reason=f"rule {rule.name} ({rule.description or 'detection rule'}): {facts}"[:1024],
        rule_source=ban_pb2.RuleSource(rule=rule.name, violation_ids=[str(violation.violation_id)], service="ingest"),
        idempotency_key=f"ingest-violation-{violation.violation_id}",
    )
    if rule.ban.permanent:
        req.permanent = True
    else:
        req.duration.CopyFrom(duration_pb2.Duration(seconds=int(rule.ban.seconds)))
    return req


class BanClient:
    def __init__(self, addr: str, *, timeout: float = 2.0, attempts: int = 3) -> None:
        self.addr = addr
        self.timeout = timeout
        self.attempts = attempts
        self._channel = grpc.aio.insecure_channel(addr)
        self._stub = ban_pb2_grpc.BanServiceStub(self._channel)

    async def ban(self, rule: Rule, violation: Recorded, evidence: dict[str, Any]) -> datetime | None | bool:
        """Send one ban; returns its end (None: permanent), or False when it could not be sent."""
        request = ban_request(rule, violation, evidence)
        for attempt in range(self.attempts):
            try:
                reply = await self._stub.Ban(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _RETRYABLE and attempt + 1 < self.attempts:
                    await asyncio.sleep(0.2 * 2 ** attempt)
                    continue
                log.error("ban not sent", extra={"rule": rule.name, "player_id": violation.player_id,
                                                 "violation_id": violation.violation_id,
                                                 "code": exc.code().name, "reason": exc.details()})
                return False
            ban = reply.ban
            if ban.permanent or not ban.HasField("expire_time"):
                return None
            return ban.expire_time.ToDatetime(tzinfo=timezone.utc)
        return False

    async def close(self) -> None:
        await self._channel.close()
