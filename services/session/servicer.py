"""gRPC servicers for the session service: protobuf in, domain calls, protobuf out (nothing else)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from banhammer.session.v1 import (ban_pb2, ban_pb2_grpc, cache_pb2, cache_pb2_grpc, notification_pb2,
                                  notification_pb2_grpc, rate_limit_pb2, rate_limit_pb2_grpc, session_pb2,
                                  session_pb2_grpc)
from envoy_api import ext_authz_pb2_grpc as authz_grpc

from services.runtime import access, gateway_headers, reflection
from services.runtime.errors import PermissionDenied

from .ban_watch import Synced
from .cache import Hit, Lease
from .envoy_servicer import AuthorizationServicer
from .models import BanEvent, BanRecord, BanSource, SessionClaims
from .notifications import Gap
from .store.keys import RESERVED_CHANNELS
from .store.notifications import id_tuple

if TYPE_CHECKING:
    from .service import Session


def _ts(ms: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _ts_fields(ms: int) -> dict[str, int]:
    """A Timestamp as constructor fields: built in place in its parent instead of copied into it."""
    return {"seconds": ms // 1000, "nanos": (ms % 1000) * 1_000_000}


def _dur(ms: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _ms(msg, field: str) -> int | None:
    """A Duration field in milliseconds, None when unset."""
    if not msg.HasField(field):
        return None
    d = getattr(msg, field)
    return d.seconds * 1000 + d.nanos // 1_000_000


def _session(c: SessionClaims) -> dict:
    """A Session as constructor fields for the response that carries it (built in place, not copied)."""
    return {"session_id": c.session_id, "subject": c.subject, "role": c.role, "attributes": c.attributes,
            "create_time": _ts_fields(c.create_ms), "expire_time": _ts_fields(c.expire_ms),
            "max_expire_time": _ts_fields(c.max_expire_ms), "last_used_time": _ts_fields(c.last_used_ms)}


def _ban(b: BanRecord) -> ban_pb2.Ban:
    out = ban_pb2.Ban(ban_id=b.ban_id, subject=b.subject, reason=b.reason, create_time=_ts(b.create_ms),
                      permanent=b.permanent)
    if b.expire_ms is not None:
        out.expire_time.CopyFrom(_ts(b.expire_ms))
    s = b.source
    if s.kind == "rule":
        out.rule_source.CopyFrom(ban_pb2.RuleSource(rule=s.rule, violation_ids=s.violation_ids, service=s.service))
    else:
        out.admin_source.admin = s.admin
    return out


def _event(e: BanEvent) -> ban_pb2.BanEvent:
    kind = ban_pb2.BAN_EVENT_TYPE_BANNED if e.banned else ban_pb2.BAN_EVENT_TYPE_UNBANNED
    return ban_pb2.BanEvent(event_id=e.event_id, type=kind, ban=_ban(e.ban), actor=e.actor, reason=e.reason,
                            time=_ts(e.time_ms))


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, svc: Session) -> None:
        self.sessions = svc.sessions

    async def CreateSession(self, request, context):
        # The contract lets only "admin" call this through the gateway; should that ever widen, a
        # caller still cannot mint a role holding an access its own role lacks.
        caller = gateway_headers.identity(context).role  # "" for a direct call
        if caller and not access.load().covers(caller, request.role):
            raise PermissionDenied(f"role {caller!r} cannot create a session with role {request.role!r}")
        made = await self.sessions.create(request.subject, request.role, dict(request.attributes), _ms(request, "ttl"))
        return session_pb2.CreateSessionResponse(token=made.token, session=_session(made.session))

    async def ValidateSession(self, request, context):
        claims = await self.sessions.validate(request.token, request.sliding)
        return session_pb2.ValidateSessionResponse(session=_session(claims))

    async def RefreshSession(self, request, context):
        claims, token = await self.sessions.refresh(request.token, _ms(request, "ttl"), request.rotate)
        return session_pb2.RefreshSessionResponse(session=_session(claims), token=token)

    async def RevokeSession(self, request, context):
        target = request.WhichOneof("target")
        revoked = await self.sessions.revoke(session_id=request.session_id if target == "session_id" else "",
                                             token=request.token if target == "token" else "")
        return session_pb2.RevokeSessionResponse(revoked=revoked)

    async def RevokeSubjectSessions(self, request, context):
        count = await self.sessions.revoke_subject(request.subject)
        return session_pb2.RevokeSubjectSessionsResponse(revoked_count=count)

    async def ListSessions(self, request, context):
        items, token = await self.sessions.list(request.subject, request.page_size, request.page_token)
        return session_pb2.ListSessionsResponse(sessions=[_session(c) for c in items], next_page_token=token)


class BanServicer(ban_pb2_grpc.BanServiceServicer):
    def __init__(self, svc: Session) -> None:
        self.bans = svc.bans
        self.watch = svc.ban_watch

    async def Ban(self, request, context):
        which = request.WhichOneof("source")
        source = None
        if which == "rule_source":
            r = request.rule_source
            source = BanSource(kind="rule", rule=r.rule, violation_ids=tuple(r.violation_ids), service=r.service)
        elif which == "admin_source":
            source = BanSource(kind="admin", admin=request.admin_source.admin)
        length = request.WhichOneof("length")
        result = await self.bans.ban(
            request.subject, request.reason, source, _ms(request, "duration") if length == "duration" else None,
            length == "permanent" and request.permanent, request.idempotency_key)
        return ban_pb2.BanResponse(ban=_ban(result.ban), replayed=result.replayed,
                                   revoked_session_count=result.revoked_sessions)

    async def Unban(self, request, context):
        lifted = await self.bans.unban(request.subject, request.unbanned_by, request.reason)
        if lifted is None:
            return ban_pb2.UnbanResponse(unbanned=False)
        return ban_pb2.UnbanResponse(unbanned=True, ban=_ban(lifted))

    async def IsBanned(self, request, context):
        active = await self.bans.is_banned(request.subject)
        if active is None:
            return ban_pb2.IsBannedResponse(banned=False)
        return ban_pb2.IsBannedResponse(banned=True, ban=_ban(active))

    async def CheckBans(self, request, context):
        subjects = list(request.subjects)
        bans = await self.bans.check(subjects)
        # Dicts are built in place in the response; BanStatus objects would each be copied into it
        # (a third of this RPC's Python time for a batch of 100).
        return ban_pb2.CheckBansResponse(results=[
            {"subject": s, "banned": True, "ban": _ban(b)} if b else {"subject": s}
            for s, b in zip(subjects, bans)])

    async def ListBans(self, request, context):
        items, token = await self.bans.list(request.page_size, request.page_token)
        return ban_pb2.ListBansResponse(bans=[_ban(b) for b in items], next_page_token=token)

    async def GetBanHistory(self, request, context):
        items, token = await self.bans.history(request.subject, request.page_size, request.page_token)
        return ban_pb2.GetBanHistoryResponse(events=[_event(e) for e in items], next_page_token=token)

    async def WatchBans(self, request, context):
        async for event in self.watch.watch(request.resume_from):
            if isinstance(event, Synced):
                yield ban_pb2.WatchBansResponse(synced=ban_pb2.BanWatchSynced(reset=event.reset),
                                                position=event.position)
                continue
            change = ban_pb2.BanChange(subject=event.subject, banned=event.banned)
            if event.banned:
                change.ban.CopyFrom(_ban(event.ban))
            yield ban_pb2.WatchBansResponse(change=change, position=event.position)


class CacheServicer(cache_pb2_grpc.CacheServiceServicer):
    def __init__(self, svc: Session) -> None:
        self.cache = svc.cache

    async def Get(self, request, context):
        hit = await self.cache.get(request.namespace, request.key)
        if hit is None:
            return cache_pb2.GetResponse(found=False)
        return cache_pb2.GetResponse(found=True, value=hit.value, expire_time=_ts(hit.expire_ms))

    async def Set(self, request, context):
        expire_ms, released = await self.cache.set(request.namespace, request.key, request.value,
                                                   _ms(request, "ttl"), request.lease_token)
        return cache_pb2.SetResponse(expire_time=_ts(expire_ms), lease_released=released)

    async def Delete(self, request, context):
        return cache_pb2.DeleteResponse(deleted=await self.cache.delete(request.namespace, request.key))

    async def GetOrLease(self, request, context):
        out = await self.cache.get_or_lease(request.namespace, request.key, _ms(request, "lease_ttl"),
                                            _ms(request, "max_wait"))
        if isinstance(out, Hit):
            return cache_pb2.GetOrLeaseResponse(hit=cache_pb2.CacheHit(value=out.value, expire_time=_ts(out.expire_ms)))
        if isinstance(out, Lease):
            return cache_pb2.GetOrLeaseResponse(
                lease=cache_pb2.CacheLease(lease_token=out.token, expire_time=_ts(out.expire_ms)))
        return cache_pb2.GetOrLeaseResponse(wait=cache_pb2.CacheWait(retry_after=_dur(out.retry_after_ms)))

    async def ReleaseLease(self, request, context):
        released = await self.cache.release(request.namespace, request.key, request.lease_token)
        return cache_pb2.ReleaseLeaseResponse(released=released)


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, svc: Session) -> None:
        self.notifications = svc.notifications

    async def Publish(self, request, context):
        entry_id = await self.notifications.publish(request.channel, request.type, request.message,
                                                    dict(request.attributes))
        return notification_pb2.PublishResponse(id=entry_id, publish_time=_ts(id_tuple(entry_id)[0]))

    async def Subscribe(self, request, context):
        role = gateway_headers.identity(context).role  # "" for a direct call
        reserved = sorted(set(request.channels) & set(RESERVED_CHANNELS))
        if reserved and role and not access.load().allows(role, access.SERVICE):
            raise PermissionDenied(f"channel {reserved[0]} is for services")
        async for event in self.notifications.subscribe(list(request.channels), dict(request.last_seen_ids)):
            item = event.item
            if isinstance(item, Gap):
                yield notification_pb2.SubscribeResponse(
                    gap=notification_pb2.SubscriptionGap(channel=item.channel, last_seen_id=item.last_seen_id,
                                                         oldest_available_id=item.oldest_available_id),
                    replayed=True)
                continue
            yield notification_pb2.SubscribeResponse(notification=notification_pb2.Notification(
                id=item.id, channel=item.channel, type=item.type, message=item.message,
                attributes=item.attributes, publish_time=_ts(id_tuple(item.id)[0])), replayed=event.replayed)


class RateLimitServicer(rate_limit_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, svc: Session) -> None:
        self.limits = svc.rate_limits

    async def Consume(self, request, context):
        d = await self.limits.consume(request.key, request.limit, _ms(request, "window"), request.cost)
        return rate_limit_pb2.ConsumeResponse(allowed=d.allowed, remaining=d.remaining,
                                              retry_after=_dur(d.retry_after_ms), reset_after=_dur(d.reset_after_ms))


def register(server: grpc.aio.Server, svc: Session) -> list[str]:
    """Add every session servicer to ``server``; returns the full service names."""
    session_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(svc), server)
    ban_pb2_grpc.add_BanServiceServicer_to_server(BanServicer(svc), server)
    cache_pb2_grpc.add_CacheServiceServicer_to_server(CacheServicer(svc), server)
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(NotificationServicer(svc), server)
    rate_limit_pb2_grpc.add_RateLimitServiceServicer_to_server(RateLimitServicer(svc), server)
    # The gateway's authorizer and per-caller limits (Envoy calls it directly).
    authz_grpc.add_AuthorizationServicer_to_server(AuthorizationServicer(svc.gateway), server)
    # The gateway's reflection of the whole suite (Envoy rewrites /grpc.reflection. to it).
    gateway_reflection = reflection.add_gateway_reflection(server)
    return [f"banhammer.session.v1.{n}" for n in
            ("SessionService", "BanService", "CacheService", "NotificationService", "RateLimitService")] + [
        "envoy.service.auth.v3.Authorization", *gateway_reflection]
