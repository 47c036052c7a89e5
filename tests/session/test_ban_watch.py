"""BanService.WatchBans: bans and unbans pushed in order, resumable, reset when the gap is gone."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from banhammer.session.v1 import ban_pb2 as pb
from banhammer.session.v1 import notification_pb2

from .helpers import dur, unique, violations


def _ban(subject: str, **kw) -> pb.BanRequest:
    return pb.BanRequest(subject=subject, reason="aimbot", admin_source=pb.AdminSource(admin="gm:watch"), **kw)


async def _next(call, subjects: set[str]) -> pb.WatchBansResponse:
    """The next event about one of ``subjects`` (other tests share the channel), or a synced marker."""
    while True:
        event = await asyncio.wait_for(call.read(), timeout=5)
        if event.WhichOneof("event") == "synced" or event.change.subject in subjects:
            return event


async def test_fresh_watch_is_synced_at_once_then_gets_bans_and_unbans(bans):
    player = unique("watch")
    call = bans.WatchBans(pb.WatchBansRequest())
    first = await _next(call, {player})
    assert first.WhichOneof("event") == "synced" and first.synced.reset and first.position
    banned = await bans.Ban(_ban(player, duration=dur(3600)))
    change = await _next(call, {player})
    assert change.change.banned and change.change.ban.ban_id == banned.ban.ban_id
    assert change.change.ban.expire_time == banned.ban.expire_time
    await bans.Unban(pb.UnbanRequest(subject=player, unbanned_by="gm:watch", reason="appeal"))
    lifted = await _next(call, {player})
    assert not lifted.change.banned and not lifted.change.HasField("ban")
    assert tuple(map(int, lifted.position.split("-"))) > tuple(map(int, change.position.split("-")))
    call.cancel()


async def test_resume_replays_missed_changes_in_order_then_goes_live(bans):
    a, b, c = unique("watch-a"), unique("watch-b"), unique("watch-c")
    call = bans.WatchBans(pb.WatchBansRequest())
    await _next(call, {a})
    await bans.Ban(_ban(a, permanent=True))
    seen = (await _next(call, {a})).position
    call.cancel()  # disconnected: a ban and an unban happen meanwhile
    await bans.Ban(_ban(b, permanent=True))
    await bans.Unban(pb.UnbanRequest(subject=a, unbanned_by="gm:watch", reason="appeal"))
    call = bans.WatchBans(pb.WatchBansRequest(resume_from=seen))
    replayed = [await _next(call, {a, b}) for _ in range(3)]
    assert [(e.WhichOneof("event"), e.change.subject, e.change.banned) for e in replayed[:2]] == [
        ("change", b, True), ("change", a, False)]
    assert replayed[2].WhichOneof("event") == "synced" and not replayed[2].synced.reset
    await bans.Ban(_ban(c, permanent=True))
    live = await _next(call, {c})
    assert live.change.subject == c and live.change.banned
    call.cancel()


async def test_a_ban_that_changes_nothing_is_not_a_change(bans):
    player, marker = unique("watch-long"), unique("watch-marker")
    await bans.Ban(_ban(player, permanent=True))
    call = bans.WatchBans(pb.WatchBansRequest())
    await _next(call, {player})
    await bans.Ban(_ban(player, duration=dur(3600)))  # the permanent ban stays active
    await bans.Ban(_ban(marker, permanent=True))
    assert (await _next(call, {player, marker})).change.subject == marker
    call.cancel()


@pytest.mark.parametrize("position", ["1-0", "99999999999999-0"])
async def test_trimmed_or_unknown_position_resets(bans, r, position):
    await bans.Ban(_ban(unique("watch-trim"), permanent=True))
    await r.xtrim("notification:session.bans", minid=2)  # "1-0" trimmed for sure
    call = bans.WatchBans(pb.WatchBansRequest(resume_from=position))
    first = await asyncio.wait_for(call.read(), timeout=5)
    assert first.WhichOneof("event") == "synced" and first.synced.reset
    call.cancel()


async def test_invalid_position_and_reserved_channel(bans, notify):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bans.WatchBans(pb.WatchBansRequest(resume_from="yesterday")).read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err.value) == ["resume_from"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.Publish(notification_pb2.PublishRequest(channel="session.bans", type="banned", message="x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
