"""Client of the session service: logins, the shared cache and alert notifications."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2

from banhammer.session.v1 import cache_pb2, cache_pb2_grpc, notification_pb2, notification_pb2_grpc
from banhammer.session.v1 import session_pb2, session_pb2_grpc
from services.runtime import Unavailable

log = logging.getLogger("banhammer.energy.session")

CACHE_NAMESPACE = "energy"


@dataclass(frozen=True)
class NewSession:
    token: str
    session_id: str
    expire_time: dt.datetime


@dataclass(frozen=True)
class Claims:
    subject: str
    role: str
    username: str


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class SessionClient:
    """Thin wrapper; every failure of the session service surfaces as ``SessionUnavailable``."""

    def __init__(self, addr: str, timeout: float = 2.0) -> None:
        self.addr = addr
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(addr) if addr else None
        if self._channel is not None:
            self._sessions = session_pb2_grpc.SessionServiceStub(self._channel)
            self._cache = cache_pb2_grpc.CacheServiceStub(self._channel)
            self._notify = notification_pb2_grpc.NotificationServiceStub(self._channel)

    @property
    def configured(self) -> bool:
        return self._channel is not None

    def _require(self) -> None:
        if self._channel is None:
            raise Unavailable("session service not configured (SESSION_SERVICE_ADDR)", retry_after=5)

    async def create_session(self, subject: str, role: str, username: str, ttl_seconds: float) -> NewSession:
        self._require()
        try:
            reply = await self._sessions.CreateSession(session_pb2.CreateSessionRequest(
                subject=subject, role=role, attributes={"username": username}, ttl=_duration(ttl_seconds)),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("CreateSession failed", extra={"code": exc.code().name})
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise  # banned subject: mapped by the caller
            raise Unavailable("session service unavailable", retry_after=1) from None
        return NewSession(reply.token, reply.session.session_id, reply.session.expire_time.ToDatetime(dt.timezone.utc))

    async def validate(self, token: str) -> Claims | None:
        """Claims of a live session, None for an unknown/expired one."""
        self._require()
        try:
            reply = await self._sessions.ValidateSession(session_pb2.ValidateSessionRequest(token=token),
                                                          timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise Unavailable("session service unavailable", retry_after=1) from None
        s = reply.session
        return Claims(s.subject, s.role, s.attributes.get("username", ""))

    async def revoke_subject(self, subject: str, reason: str) -> None:
        self._require()
        try:
            await self._sessions.RevokeSubjectSessions(
                session_pb2.RevokeSubjectSessionsRequest(subject=subject, reason=reason), timeout=self.timeout)
        except grpc.aio.AioRpcError:
            raise Unavailable("session service unavailable", retry_after=1) from None

    # --- cache: best effort; a cache outage degrades to recomputing ------------------------------
    async def cache_get(self, key: str) -> bytes | None:
        if self._channel is None:
            return None
        try:
            reply = await self._cache.Get(cache_pb2.GetRequest(namespace=CACHE_NAMESPACE, key=key), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.debug("cache get failed", extra={"code": exc.code().name})
            return None
        return reply.value if reply.found else None

    async def cache_set(self, key: str, value: bytes, ttl_seconds: float, lease_token: str = "") -> None:
        if self._channel is None:
            return
        try:
            await self._cache.Set(cache_pb2.SetRequest(namespace=CACHE_NAMESPACE, key=key, value=value,
                                                       ttl=_duration(ttl_seconds), lease_token=lease_token),
                                  timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.debug("cache set failed", extra={"code": exc.code().name})

    async def cache_delete(self, key: str) -> None:
        if self._channel is None:
            return
        try:
            await self._cache.Delete(cache_pb2.DeleteRequest(namespace=CACHE_NAMESPACE, key=key), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.debug("cache delete failed", extra={"code": exc.code().name})

    async def get_or_lease(self, key: str, lease_seconds: float, max_wait: float) -> tuple[bytes | None, str]:
        """(value, "") on a hit; (None, lease_token) when we must compute; (None, "") when the cache
        is unusable or someone else is computing past our wait budget: compute without caching."""
        if self._channel is None:
            return None, ""
        try:
            reply = await self._cache.GetOrLease(cache_pb2.GetOrLeaseRequest(
                namespace=CACHE_NAMESPACE, key=key, lease_ttl=_duration(lease_seconds),
                max_wait=_duration(max_wait)), timeout=self.timeout + max_wait)
        except grpc.aio.AioRpcError as exc:
            log.debug("cache get_or_lease failed", extra={"code": exc.code().name})
            return None, ""
        outcome = reply.WhichOneof("outcome")
        if outcome == "hit":
            return reply.hit.value, ""
        if outcome == "lease":
            return None, reply.lease.lease_token
        return None, ""

    async def release_lease(self, key: str, lease_token: str) -> None:
        if self._channel is None or not lease_token:
            return
        try:
            await self._cache.ReleaseLease(cache_pb2.ReleaseLeaseRequest(
                namespace=CACHE_NAMESPACE, key=key, lease_token=lease_token), timeout=self.timeout)
        except grpc.aio.AioRpcError:
            pass

    # --- notifications ---------------------------------------------------------------------------
    async def publish(self, channel: str, type_: str, message: str, attributes: dict[str, str]) -> bool:
        """True once published; False when the session service could not take it (retried later)."""
        if self._channel is None:
            return False
        try:
            await self._notify.Publish(notification_pb2.PublishRequest(
                channel=channel, type=type_, message=message, attributes=attributes), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("publish failed", extra={"code": exc.code().name, "channel": channel})
            return False
        return True

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
