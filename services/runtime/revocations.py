"""Open gateway streams end when their caller's session is revoked.

Envoy's ext_authz admits a call once, when it starts: a game server's stream could otherwise
outlive its credentials by hours. The session service appends every revocation (one session, all
of a subject's sessions, a ban, an expiry) to the ``session.revoked`` notification channel inside
the same Redis script that revokes. Each process with open gateway streams follows that channel
(NotificationService.Subscribe, resuming from its last seen id after a reconnect) and ends every
stream whose session or subject is named with UNAUTHENTICATED.

A stream is watched when the gateway admitted it: it carries the session header (set by ext_authz,
see gateway_headers.py); direct internal calls carry none and are not watched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import grpc

from . import gateway_headers

log = logging.getLogger("banhammer.runtime.revocations")

CHANNEL = "session.revoked"
# A follower (re)starts this far back: a revocation published while it was connecting is not missed.
REPLAY_MS = 60_000


@dataclass(eq=False)
class Watch:
    task: asyncio.Task
    session_id: str
    subject: str
    revoked: bool = field(default=False)


class Revocations:
    def __init__(self, session_addr: str) -> None:
        self.session_addr = session_addr
        self._by_session: dict[str, set[Watch]] = {}
        self._by_subject: dict[str, set[Watch]] = {}
        self._follower: asyncio.Task | None = None

    def watch(self, context: grpc.aio.ServicerContext) -> Watch | None:
        """Watch the current call if the gateway admitted it with a session; None otherwise."""
        if not self.session_addr:
            return None
        caller = gateway_headers.identity(context)
        session_id, subject = caller.session_id, caller.subject
        task = asyncio.current_task()
        if not session_id or task is None:
            return None
        w = Watch(task, session_id, subject)
        self._by_session.setdefault(session_id, set()).add(w)
        if subject:
            self._by_subject.setdefault(subject, set()).add(w)
        if self._follower is None or self._follower.done():
            self._follower = asyncio.create_task(self._follow(), name="revocations")
        return w

    def release(self, w: Watch) -> None:
        for index, key in ((self._by_session, w.session_id), (self._by_subject, w.subject)):
            watches = index.get(key)
            if watches is not None:
                watches.discard(w)
                if not watches:
                    del index[key]

    def revoke(self, attributes: dict[str, str]) -> int:
        """End the watched calls named by one revocation; returns how many."""
        hit = set(self._by_session.get(attributes.get("session_id", ""), ()))
        hit |= self._by_subject.get(attributes.get("subject", ""), set())
        for w in hit:
            if not w.revoked:
                w.revoked = True
                w.task.cancel()  # the interceptor turns this cancellation into UNAUTHENTICATED
        return len(hit)

    async def _follow(self) -> None:
        from banhammer.session.v1 import notification_pb2, notification_pb2_grpc

        last = f"{int(time.time() * 1000) - REPLAY_MS}-0"
        delay = 0.2
        while self._by_session:
            try:
                async with grpc.aio.insecure_channel(self.session_addr) as channel:
                    stub = notification_pb2_grpc.NotificationServiceStub(channel)
                    call = stub.Subscribe(notification_pb2.SubscribeRequest(channels=[CHANNEL],
                                                                            last_seen_ids={CHANNEL: last}))
                    async for event in call:
                        delay = 0.2
                        if event.WhichOneof("event") == "notification":
                            last = event.notification.id
                            self.revoke(dict(event.notification.attributes))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep following; the session service may be restarting
                log.warning("revocation feed interrupted; reconnecting", extra={"reason": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
