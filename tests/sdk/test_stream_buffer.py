"""The action stream's buffer without a server: a loopback call records what the SDK writes."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2
from banhammer_client import ActionStream


class Loopback:
    """StreamActions that records every batch and acknowledges it unless ``ack`` is False."""

    def __init__(self, ack: bool = True) -> None:
        self.ack = ack
        self.written: list[ingest_pb2.StreamActionsRequest] = []
        self._acks: asyncio.Queue = asyncio.Queue()

    def StreamActions(self, metadata=()):  # noqa: N802 - the stub's method name
        return self

    async def write(self, batch) -> None:
        self.written.append(batch)
        if self.ack:
            self._acks.put_nowait(ingest_pb2.StreamActionsResponse(sequence=batch.sequence,
                                                                   accepted_count=len(batch.actions)))

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self._acks.get()

    def cancel(self) -> None:
        pass

    def done(self) -> bool:
        return False


def _actions(n: int, event_ids: bool = True) -> list[common_pb2.PlayerAction]:
    return [common_pb2.PlayerAction(player_id=f"p{i}", action_type="move", event_id=f"e{i}" if event_ids else "")
            for i in range(n)]


@pytest.mark.parametrize("many", [True, False], ids=["send_many", "send"])
async def test_actions_leave_in_order_in_numbered_batches_through_a_small_buffer(many):
    call = Loopback()
    stream = ActionStream(call, lambda: (), producer_id="t", batch_size=4, linger=0.01, buffer=6)
    stream.start()
    actions = _actions(23)
    if many:
        await stream.send_many(actions)
    else:
        for a in actions:
            await stream.send(a)
    report = await stream.close(5)
    assert (report.accepted, report.unacknowledged) == (23, 0)
    assert [a.event_id for b in call.written for a in b.actions] == [f"e{i}" for i in range(23)]
    assert [b.sequence for b in call.written] == list(range(1, len(call.written) + 1))
    assert all(len(b.actions) <= 4 and b.producer.producer_id == "t" for b in call.written)


async def test_a_full_buffer_holds_the_producer_back_and_close_reports_the_rest():
    call = Loopback(ack=False)  # nothing is acknowledged: the window fills, then the buffer
    stream = ActionStream(call, lambda: (), producer_id="t", batch_size=4, linger=1, buffer=6, max_in_flight=2)
    stream.start()
    actions = _actions(30, event_ids=False)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.send_many(actions), 0.2)
    assert len(call.written) == 2  # the in-flight window
    queued = 2 * 4 + 6  # in flight + a full buffer; the rest were never queued
    report = await stream.close(0.1)
    assert (report.accepted, report.unacknowledged) == (0, queued)
    assert all(a.event_id for a in actions[:queued])  # assigned before queueing


class Refused(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.PERMISSION_DENIED

    def details(self) -> str:
        return "not a game server"


class RefusingLoopback(Loopback):
    """Takes writes, never acknowledges, and fails the stream for good once told to."""

    def __init__(self) -> None:
        super().__init__(ack=False)
        self.refuse = asyncio.Event()

    async def __anext__(self):
        await self.refuse.wait()
        raise Refused()


async def test_a_producer_waiting_for_room_hears_when_the_stream_fails_for_good():
    call = RefusingLoopback()
    stream = ActionStream(call, lambda: (), producer_id="t", batch_size=4, linger=1, buffer=6, max_in_flight=1)
    stream.start()
    waiting = asyncio.create_task(stream.send_many(_actions(30)))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # held back by the full buffer
    call.refuse.set()
    with pytest.raises(grpc.RpcError):
        await asyncio.wait_for(waiting, 2)
    report = await stream.close(0.1)
    assert report.errors == ["PERMISSION_DENIED: not a game server"]
