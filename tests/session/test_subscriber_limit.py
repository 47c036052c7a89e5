"""NOTIFY_MAX_SUBSCRIBERS: a Subscribe past the limit gets RESOURCE_EXHAUSTED with RetryInfo; the
admitted subscribers keep receiving every notification, and a freed slot admits a new subscriber
that replays everything published (nothing acknowledged by Publish is lost)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from banhammer.session.v1 import notification_pb2 as pb
from banhammer.session.v1 import notification_pb2_grpc
from services.runtime.server import start_runtime
from tests.harness import retry_delay, wait_serving

from .helpers import unique

LIMIT = 2


@pytest.fixture
async def notify(session_redis_url):
    runtime = await start_runtime(["session"], environ={
        "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0", "HEALTH_INTERVAL_SECONDS": "0.2", "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "1", "REDIS_URL": session_redis_url, "NOTIFY_MAX_SUBSCRIBERS": str(LIMIT)})
    addr = f"127.0.0.1:{runtime.port}"
    await wait_serving(addr, "", timeout=20)
    channel = grpc.aio.insecure_channel(addr)
    yield notification_pb2_grpc.NotificationServiceStub(channel)
    await channel.close()
    await runtime.stop()


async def publish(notify, channel: str, text: str) -> str:
    return (await notify.Publish(pb.PublishRequest(channel=channel, type="t", message=text))).id


async def read(call, n: int) -> list[str]:
    return [(await asyncio.wait_for(call.read(), timeout=10)).notification.message for _ in range(n)]


async def test_subscribers_past_the_limit_are_refused_with_retry_advice(notify):
    channel = unique("limit")
    await publish(notify, channel, "m1")
    replay_all = pb.SubscribeRequest(channels=[channel], last_seen_ids={channel: "0-0"})
    admitted = [notify.Subscribe(replay_all) for _ in range(LIMIT)]
    for call in admitted:  # a replayed message: the subscription holds its slot
        assert await read(call, 1) == ["m1"]

    refused = notify.Subscribe(replay_all)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await refused.read()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_delay(err.value) > 0

    await publish(notify, channel, "m2")
    for call in admitted:
        assert await read(call, 1) == ["m2"]

    admitted[0].cancel()  # a slot frees once the server has seen the cancellation
    deadline = time.monotonic() + 10
    while True:
        late = notify.Subscribe(replay_all)
        try:
            assert await read(late, 2) == ["m1", "m2"]
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline, exc
            await asyncio.sleep(0.05)
    late.cancel()
    admitted[1].cancel()
