"""Bans the rules decide, delivered to banhammer.session.v1.BanService until acknowledged.

A violation that asks for a ban stores its serialized BanRequest in ``ban_outbox`` in the same
transaction (store/detect.py), so no restart or outage of the session service can lose it. The
deliverer leases due rows, sends them, and deletes each once the session service answers; a
retryable failure (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) is tried again later with a
doubling delay up to a cap, any other refusal marks the row failed (kept, visible in the backlog).
Each request's idempotency key comes from its violation id, so a redelivery never creates a second
ban or history event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timezone
from typing import Any

import grpc
from google.protobuf import duration_pb2

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc

from . import metrics
from .rules import Rule
from .store import IngestStore, outbox
from .store.detect import Recorded

log = logging.getLogger("banhammer.ingest.bans")

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
              grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED}


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


def serialized_ban(rule: Rule, violation: Recorded, evidence: dict[str, Any]) -> bytes:
    return ban_request(rule, violation, evidence).SerializeToString()


class BanDeliverer:
    """Drains the outbox: woken after violations are recorded, and every ``poll_seconds`` for retries."""

    def __init__(self, store: IngestStore, addr: str, *, timeout: float = 2.0, retry_max_seconds: float = 60.0,
                 poll_seconds: float = 1.0, batch: int = 100) -> None:
        self.store = store
        self.timeout = timeout
        self.retry_max_seconds = retry_max_seconds
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._channel = grpc.aio.insecure_channel(addr)
        self._stub = ban_pb2_grpc.BanServiceStub(self._channel)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="ingest-ban-delivery")

    def wake(self) -> None:
        self._wake.set()

    async def deliver_due(self) -> int:
        """One pass: send every due ban; returns how many were acknowledged."""
        due = await self.store.lease_bans(self.batch, self.timeout * 3)
        results = await asyncio.gather(*(self._send(item) for item in due))
        return sum(results)

    async def _send(self, item: outbox.Leased) -> bool:
        request = ban_pb2.BanRequest.FromString(item.request)
        try:
            reply = await self._stub.Ban(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            delay = min(self.retry_max_seconds, 0.5 * 2 ** min(item.attempts - 1, 16))
            await self.store.ban_failed(item.violation_id, f"{exc.code().name}: {exc.details()}",
                                        delay if exc.code() in _RETRYABLE else None)
            log.warning("ban not delivered", extra={"player_id": item.player_id, "violation_id": item.violation_id,
                                                    "attempts": item.attempts, "code": exc.code().name})
            return False
        ban = reply.ban
        until = None if ban.permanent or not ban.HasField("expire_time") else \
            ban.expire_time.ToDatetime(tzinfo=timezone.utc)
        await self.store.ban_delivered(item.violation_id, item.player_id, until)
        metrics.BANS_SENT.inc()
        return True

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                while await self._drain_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the rows stay in the outbox; next round retries
                log.exception("ban delivery failed")

    async def _drain_once(self) -> bool:
        """True when a full batch was acknowledged (more may be due right away)."""
        done = await self.deliver_due()
        backlog = await self.store.ban_backlog()
        metrics.BAN_BACKLOG.labels("pending").set(backlog.pending)
        metrics.BAN_BACKLOG.labels("failed").set(backlog.failed)
        return done >= self.batch

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._channel.close()

