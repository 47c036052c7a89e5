"""BanService against a real Redis: bans revoke sessions and block new ones, expiry by the clock,
the later-ending ban wins, idempotent replays, history, batch checks in one round trip, lists."""

from __future__ import annotations

import grpc
import pytest

from banhammer.session.v1 import ban_pb2 as pb
from banhammer.session.v1 import session_pb2 as spb

from .helpers import dur, unique, violations


def rule_ban(subject, **kw):
    return pb.BanRequest(subject=subject, reason="reward spam",
                         rule_source=pb.RuleSource(rule="reward_rate", violation_ids=["101", "102"], service="ingest"),
                         **kw)


def admin_ban(subject, admin="gm:alice", **kw):
    return pb.BanRequest(subject=subject, reason="abusive chat", admin_source=pb.AdminSource(admin=admin), **kw)


async def test_ban_revokes_sessions_and_blocks_new_ones(bans, sessions):
    player = unique("player")
    made = [await sessions.CreateSession(spb.CreateSessionRequest(subject=player, role="user")) for _ in range(2)]
    out = await bans.Ban(rule_ban(player, permanent=True))
    assert out.revoked_session_count == 2 and out.ban.permanent and not out.ban.HasField("expire_time")
    for m in made:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.ValidateSession(spb.ValidateSessionRequest(token=m.token))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.CreateSession(spb.CreateSessionRequest(subject=player, role="user"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    got = await bans.IsBanned(pb.IsBannedRequest(subject=player))
    assert got.banned and got.ban.ban_id == out.ban.ban_id
    assert list(got.ban.rule_source.violation_ids) == ["101", "102"] and got.ban.rule_source.rule == "reward_rate"


async def test_timed_ban_expires_by_clock_and_sweep_removes_it(bans, sessions, clock, service, r):
    player = unique("player")
    await bans.Ban(admin_ban(player, duration=dur(3600)))
    clock.advance(3599)
    assert (await bans.IsBanned(pb.IsBannedRequest(subject=player))).banned
    clock.advance(1)
    assert not (await bans.IsBanned(pb.IsBannedRequest(subject=player))).banned
    await sessions.CreateSession(spb.CreateSessionRequest(subject=player, role="user"))  # allowed again
    listed = await bans.ListBans(pb.ListBansRequest(page_size=1000))
    assert player not in {b.subject for b in listed.bans}
    await service[1].sweep()
    assert await r.exists(f"ban:active:{player}") == 0


async def test_later_ending_ban_wins_and_both_are_in_history(bans, clock):
    player = unique("player")
    long = await bans.Ban(admin_ban(player, duration=dur(7200)))
    short = await bans.Ban(rule_ban(player, duration=dur(60)))
    assert short.ban.ban_id == long.ban.ban_id  # the earlier, longer ban stays active
    perm = await bans.Ban(rule_ban(player, permanent=True))
    assert perm.ban.permanent and perm.ban.ban_id != long.ban.ban_id
    history = await bans.GetBanHistory(pb.GetBanHistoryRequest(subject=player))
    assert [e.type for e in history.events] == [pb.BAN_EVENT_TYPE_BANNED] * 3
    assert [e.actor for e in history.events] == ["rule:reward_rate", "rule:reward_rate", "gm:alice"]
    clock.advance(86400 * 365)
    assert (await bans.IsBanned(pb.IsBannedRequest(subject=player))).banned


async def test_idempotent_ban_replays_without_new_event(bans):
    player = unique("player")
    first = await bans.Ban(rule_ban(player, duration=dur(600), idempotency_key="viol-101"))
    again = await bans.Ban(rule_ban(player, duration=dur(600), idempotency_key="viol-101"))
    assert not first.replayed and again.replayed and again.ban.ban_id == first.ban.ban_id
    history = await bans.GetBanHistory(pb.GetBanHistoryRequest(subject=player))
    assert len(history.events) == 1


async def test_unban_records_who_when_why(bans, clock):
    player = unique("player")
    banned = await bans.Ban(admin_ban(player, permanent=True))
    clock.advance(10)
    out = await bans.Unban(pb.UnbanRequest(subject=player, unbanned_by="gm:bob", reason="appeal accepted"))
    assert out.unbanned and out.ban.ban_id == banned.ban.ban_id
    assert not (await bans.IsBanned(pb.IsBannedRequest(subject=player))).banned
    assert not (await bans.Unban(pb.UnbanRequest(subject=player, unbanned_by="gm:bob", reason="again"))).unbanned
    events = (await bans.GetBanHistory(pb.GetBanHistoryRequest(subject=player))).events
    assert [e.type for e in events] == [pb.BAN_EVENT_TYPE_UNBANNED, pb.BAN_EVENT_TYPE_BANNED]
    unban, ban = events
    assert (unban.actor, unban.reason, unban.time.ToMilliseconds()) == ("gm:bob", "appeal accepted", clock.now_ms())
    assert (ban.actor, ban.reason, ban.ban.admin_source.admin) == ("gm:alice", "abusive chat", "gm:alice")
    assert unban.ban.ban_id == ban.ban.ban_id


async def test_check_bans_thousand_subjects_in_one_round_trip(bans, r):
    # Subjects travel to the script as JSON: non-ASCII, quotes and backslashes must survive it.
    subjects = [unique("p") for _ in range(995)] + [unique("joueur_é_"), unique("玩家_"), unique('q"\\x')]
    banned = set(subjects[::97]) | set(subjects[-3:])
    for s in banned:
        await bans.Ban(rule_ban(s, duration=dur(600)))
    request = [*subjects, subjects[0], subjects[0]]  # duplicates allowed, order kept
    await bans.CheckBans(pb.CheckBansRequest(subjects=subjects[:2]))  # loads the script
    before = await r.info("commandstats")
    out = await bans.CheckBans(pb.CheckBansRequest(subjects=request))
    after = await r.info("commandstats")
    assert [s.subject for s in out.results] == request
    assert {s.subject for s in out.results if s.banned} == banned
    assert all(s.ban.subject == s.subject for s in out.results if s.banned)
    calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
    # One script call; its GETs (one per requested subject) run inside Redis.
    assert calls.get("cmdstat_evalsha") == 1 and calls.get("cmdstat_get") == len(request)
    assert calls.get("cmdstat_mget", 0) == 0


async def test_check_bans_limits(bans):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bans.CheckBans(pb.CheckBansRequest(subjects=["a"] * 1001))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bans.CheckBans(pb.CheckBansRequest(subjects=["ok", ""]))
    assert violations(err.value) == ["subjects[1]"]


async def test_list_bans_pages_newest_first(bans, clock):
    mine = []
    for _ in range(5):
        mine.append(unique("lb"))
        await bans.Ban(admin_ban(mine[-1], permanent=True))
        clock.advance(1)
    seen, token = [], ""
    while True:
        page = await bans.ListBans(pb.ListBansRequest(page_size=3, page_token=token))
        seen += [b.subject for b in page.bans]
        token = page.next_page_token
        if not token:
            break
    ordered = [s for s in seen if s in mine]
    assert ordered == mine[::-1]
    assert len(seen) == len(set(seen))


async def test_invalid_ban_requests(bans):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bans.Ban(pb.BanRequest(subject="p", reason=""))
    assert {"reason", "source", "length"} <= set(violations(err.value))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bans.Ban(pb.BanRequest(subject="p", reason="x", rule_source=pb.RuleSource(rule="r"), duration=dur(1)))
    assert {"rule_source.violation_ids", "duration"} <= set(violations(err.value))
