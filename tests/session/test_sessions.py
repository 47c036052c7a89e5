"""SessionService against a real Redis: lifecycle, expiry by the injected clock, revocation,
pagination, validation, and that a token is never stored in Redis."""

from __future__ import annotations

import base64

import grpc
import pytest

from banhammer.session.v1 import session_pb2 as pb

from .helpers import dur, unique, violations


async def _create(sessions, subject=None, ttl=None, **attrs):
    req = pb.CreateSessionRequest(subject=subject or unique("user"), role="user", attributes=attrs)
    if ttl is not None:
        req.ttl.CopyFrom(dur(ttl))
    return await sessions.CreateSession(req)


async def _unauthenticated(sessions, token):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.ValidateSession(pb.ValidateSessionRequest(token=token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return err.value


async def test_create_then_validate_returns_claims(sessions):
    made = await _create(sessions, subject="user:123", username="kim")
    assert len(made.token) == 43 and len(base64.urlsafe_b64decode(made.token + "=")) == 32
    got = (await sessions.ValidateSession(pb.ValidateSessionRequest(token=made.token))).session
    assert got.subject == "user:123" and got.role == "user" and dict(got.attributes) == {"username": "kim"}
    assert got.session_id == made.session.session_id
    assert got.expire_time.ToSeconds() - got.create_time.ToSeconds() == 8 * 3600  # default ttl
    assert got.max_expire_time.ToSeconds() - got.create_time.ToSeconds() == 30 * 86400


async def test_unknown_token_is_unauthenticated(sessions):
    await _unauthenticated(sessions, "x" * 43)


async def test_session_expires_by_clock(sessions, clock):
    made = await _create(sessions, ttl=120)
    clock.advance(119)
    await sessions.ValidateSession(pb.ValidateSessionRequest(token=made.token))
    clock.advance(1)
    err = await _unauthenticated(sessions, made.token)
    assert "invalid or expired" in err.details()


async def test_sliding_validation_extends_up_to_max_lifetime(sessions, clock):
    made = await _create(sessions, ttl=3600)
    start = made.session.create_time.ToMilliseconds()
    clock.advance(1800)
    slid = (await sessions.ValidateSession(pb.ValidateSessionRequest(token=made.token, sliding=True))).session
    assert slid.expire_time.ToMilliseconds() == start + 1800_000 + 3600_000
    assert slid.last_used_time.ToMilliseconds() == start + 1800_000
    # Keep sliding until past the 30-day cap: expiry never moves beyond max_expire_time.
    for _ in range(30 * 24 + 1):
        clock.advance(3599)
        slid = (await sessions.ValidateSession(pb.ValidateSessionRequest(token=made.token, sliding=True))).session
        if clock.now_ms() + 3600_000 > slid.max_expire_time.ToMilliseconds():
            break
    assert slid.expire_time.ToMilliseconds() == slid.max_expire_time.ToMilliseconds()
    clock.advance((slid.max_expire_time.ToMilliseconds() - clock.now_ms()) / 1000)
    await _unauthenticated(sessions, made.token)


async def test_refresh_with_rotation_invalidates_old_token(sessions, clock):
    made = await _create(sessions, ttl=600)
    clock.advance(500)
    out = await sessions.RefreshSession(pb.RefreshSessionRequest(token=made.token, rotate=True, ttl=dur(900)))
    assert out.token and out.token != made.token
    assert out.session.expire_time.ToMilliseconds() == clock.now_ms() + 900_000
    await _unauthenticated(sessions, made.token)
    again = (await sessions.ValidateSession(pb.ValidateSessionRequest(token=out.token))).session
    assert again.session_id == made.session.session_id
    clock.advance(600)  # past the original expiry, inside the refreshed one
    await sessions.ValidateSession(pb.ValidateSessionRequest(token=out.token))


async def test_revoke_by_id_and_by_token_is_idempotent(sessions):
    a, b = await _create(sessions), await _create(sessions)
    assert (await sessions.RevokeSession(pb.RevokeSessionRequest(session_id=a.session.session_id))).revoked
    assert not (await sessions.RevokeSession(pb.RevokeSessionRequest(session_id=a.session.session_id))).revoked
    assert (await sessions.RevokeSession(pb.RevokeSessionRequest(token=b.token))).revoked
    assert not (await sessions.RevokeSession(pb.RevokeSessionRequest(token=b.token))).revoked
    await _unauthenticated(sessions, a.token)
    await _unauthenticated(sessions, b.token)


async def test_revoke_subject_sessions_counts_live_ones(sessions, clock):
    subject = unique("player")
    short = await _create(sessions, subject, ttl=60)
    keep = [await _create(sessions, subject) for _ in range(3)]
    other = await _create(sessions)
    clock.advance(61)  # the short one is already dead: not counted
    out = await sessions.RevokeSubjectSessions(pb.RevokeSubjectSessionsRequest(subject=subject))
    assert out.revoked_count == 3
    for m in [short, *keep]:
        await _unauthenticated(sessions, m.token)
    await sessions.ValidateSession(pb.ValidateSessionRequest(token=other.token))
    again = await sessions.RevokeSubjectSessions(pb.RevokeSubjectSessionsRequest(subject=subject))
    assert again.revoked_count == 0


async def test_list_sessions_newest_first_with_pages(sessions, clock):
    subject = unique("lister")
    ids = []
    for _ in range(5):
        ids.append((await _create(sessions, subject)).session.session_id)
        clock.advance(1)
    seen, token = [], ""
    while True:
        page = await sessions.ListSessions(pb.ListSessionsRequest(subject=subject, page_size=2, page_token=token))
        assert len(page.sessions) <= 2
        seen += [s.session_id for s in page.sessions]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a token is bound to its subject
        first = await sessions.ListSessions(pb.ListSessionsRequest(subject=subject, page_size=2))
        await sessions.ListSessions(pb.ListSessionsRequest(subject="someone-else", page_token=first.next_page_token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_invalid_create_names_every_field(sessions):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.CreateSession(pb.CreateSessionRequest(subject="", role="Admin!", ttl=dur(10),
                                                             attributes={f"k{i}": "v" for i in range(33)}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"subject", "role", "attributes", "ttl"} <= set(violations(err.value))


async def test_token_is_stored_only_as_a_hash(sessions, r):
    made = await _create(sessions, ttl=600, note="hello")
    await sessions.RefreshSession(pb.RefreshSessionRequest(token=made.token))
    raw = made.token.encode()
    found_session = False
    async for key in r.scan_iter(count=1000):
        assert raw not in key
        kind = (await r.type(key)).decode()
        if kind == "string":
            values = [await r.get(key)]
        elif kind == "hash":
            values = [x for kv in (await r.hgetall(key)).items() for x in kv]
        elif kind == "zset":
            values = await r.zrange(key, 0, -1)
        elif kind == "stream":
            values = [x for _, f in await r.xrange(key) for kv in f.items() for x in kv]
        else:
            values = []
        assert all(raw not in v for v in values), f"raw token found in {key!r}"
        found_session |= made.session.session_id.encode() in key
    assert found_session  # the scan did look at this session's records
