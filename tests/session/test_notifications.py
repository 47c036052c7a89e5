"""NotificationService on Redis Streams: live delivery, replay after a reconnect, gap reports."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from banhammer.session.v1 import notification_pb2 as pb
from services.session.notifications import Gap, Notifications
from services.session.store.notifications import NotificationStore

from .helpers import unique, violations


async def _publish(notify, channel, text):
    return (await notify.Publish(pb.PublishRequest(channel=channel, type="energy_alert", message=text,
                                                   attributes={"floor": "3"}))).id


async def _read(call, n):
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(call.read(), timeout=5))
    return out


async def test_reconnect_replays_what_was_missed_then_goes_live(notify):
    channel = unique("building_001")
    mark = await _publish(notify, channel, "before")
    call = notify.Subscribe(pb.SubscribeRequest(channels=[channel], last_seen_ids={channel: mark}))
    a, b = await _publish(notify, channel, "a"), await _publish(notify, channel, "b")
    got = await _read(call, 2)
    assert [e.notification.id for e in got] == [a, b]
    assert got[0].notification.message == "a" and dict(got[0].notification.attributes) == {"floor": "3"}
    call.cancel()  # a brief disconnect: two alerts arrive meanwhile
    c, d = await _publish(notify, channel, "c"), await _publish(notify, channel, "d")
    call = notify.Subscribe(pb.SubscribeRequest(channels=[channel], last_seen_ids={channel: b}))
    replayed = await _read(call, 2)
    assert [(e.notification.id, e.replayed) for e in replayed] == [(c, True), (d, True)]
    e = await _publish(notify, channel, "e")
    (live,) = await _read(call, 1)
    assert (live.notification.id, live.notification.message, live.replayed) == (e, "e", False)
    assert live.notification.publish_time.ToMilliseconds() == int(e.split("-")[0])
    call.cancel()


async def test_subscribe_to_several_channels(notify):
    one, two = unique("ch1"), unique("ch2")
    marks = {one: await _publish(notify, one, "m"), two: await _publish(notify, two, "m")}
    call = notify.Subscribe(pb.SubscribeRequest(channels=[one, two], last_seen_ids=marks))
    x, y = await _publish(notify, two, "x"), await _publish(notify, one, "y")
    got = {(ev.notification.channel, ev.notification.id) for ev in await _read(call, 2)}
    assert got == {(two, x), (one, y)}
    call.cancel()


async def test_gap_is_reported_when_retention_trimmed_missed_messages(service):
    _, svc = service
    small = Notifications(NotificationStore(svc.redis, svc.blocking, max_len=5, retention_ms=86400_000), 10)
    channel = unique("alerts")
    seen = await small.publish(channel, "alert", "0", {})
    for i in range(250):  # approximate trimming drops whole stream nodes (100 entries each)
        await small.publish(channel, "alert", str(i + 1), {})
    events = []
    stream = small.subscribe([channel], {channel: seen})
    async for event in stream:
        events.append(event)
        if not isinstance(event.item, Gap) and event.item.message == "250":
            break
    await stream.aclose()
    gap = events[0].item
    assert isinstance(gap, Gap) and gap.channel == channel and gap.last_seen_id == seen
    first = events[1].item
    assert first.id == gap.oldest_available_id and int(first.message) > 1
    assert [int(e.item.message) for e in events[1:]] == list(range(int(first.message), 251))


async def test_subscribe_validation(notify):
    call = notify.Subscribe(pb.SubscribeRequest(channels=["a", "a", "bad channel"], last_seen_ids={"zz": "x"}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"channels", "channels[2]", "last_seen_ids['zz']"} <= set(violations(err.value))
