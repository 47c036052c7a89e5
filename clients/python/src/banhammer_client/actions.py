"""An action stream for game servers: batched by size and time, bounded, resent until acknowledged.

``send()`` (one action) and ``send_many()`` (a tick's worth, in order) wait while the buffer is
full (back-pressure, never a silent drop). Batches carry the
producer key and a sequence (and every action an event id), so a batch resent after a reconnect (the gateway or ingest restarted,
the stream was cut) is stored once: the ingest service answers a repeat with ``duplicate``. After
a reconnect the unacknowledged batches are resent first, identically and in order. A batch refused
with RESOURCE_EXHAUSTED is resent after the server's RetryInfo delay; one refused as invalid is
dropped and counted in the report.

The buffer is a deque the writer takes whole batches from, not a queue of single actions: an
action costs an append, not a queue put and get each with their own bookkeeping, and the writer
wakes once per batch (or at the linger deadline), not once per action.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from .connection import Metadata
from .retry import Backoff, status_retry_delay

log = logging.getLogger("banhammer_client.actions")

# Failures of the whole stream after which reconnecting cannot help.
NOT_WAITING = sys.maxsize
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                   grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.FAILED_PRECONDITION})


@dataclass
class Report:
    """What a stream did: acknowledged (stored or duplicate), rejected, and still unacknowledged."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0  # in batches the server refused as invalid (not resent)
    unacknowledged: int = 0  # buffered or in flight when flush/close gave up
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


class ActionStream:
    def __init__(self, stub: ingest_pb2_grpc.IngestServiceStub, metadata: Metadata, *, producer_id: str = "",
                 epoch: int | None = None, batch_size: int = 500, linger: float = 0.05, buffer: int = 50_000,
                 max_in_flight: int = 16, backoff: Backoff = Backoff()) -> None:
        self._stub = stub
        self._metadata = metadata
        self._key = ingest_pb2.ProducerKey(producer_id=producer_id or f"sdk:{uuid.uuid4().hex}",
                                           epoch=time.time_ns() if epoch is None else epoch)
        self._batch_size = batch_size
        self._linger = linger
        self._buffer: deque[common_pb2.PlayerAction] = deque()
        self._capacity = buffer
        self._space = asyncio.Event()  # set when the writer took a batch (or the stream failed)
        self._ready = asyncio.Event()  # set when the buffer holds what the writer waits for
        self._want = NOT_WAITING  # actions the writer waits for, so a producer wakes it once
        # Twice the ingest service's in-flight limit (8 batches): when the service acknowledges a
        # batch, the next ones are already on the wire, so it never waits a round trip for work.
        self._window = asyncio.Semaphore(max_in_flight)
        self._backoff = backoff
        self._unacked: OrderedDict[int, ingest_pb2.StreamActionsRequest] = OrderedDict()
        self._sequence = 0
        self._pending = 0  # actions sent and not yet settled (queued, being batched, or in flight)
        self._idle = asyncio.Event()
        self._idle.set()
        self._report = Report()
        self._fatal: grpc.RpcError | None = None
        self._runner: asyncio.Task | None = None
        self._write_lock = asyncio.Lock()

    @property
    def producer(self) -> ingest_pb2.ProducerKey:
        return self._key

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="banhammer-action-stream")

    async def send(self, action: common_pb2.PlayerAction) -> None:
        """Queue one action; waits while the buffer is full. Raises when the stream failed for good."""
        if self._fatal is not None:
            raise self._fatal
        if not action.event_id:  # a second line of defence: ingest also deduplicates by event id
            action.event_id = uuid.uuid4().hex
        if len(self._buffer) >= self._capacity:
            await self._until_space()
        if not self._pending:
            self._idle.clear()
        self._pending += 1
        buffer = self._buffer
        buffer.append(action)
        if len(buffer) >= self._want:  # the writer waits for this: wake it
            self._ready.set()
            if len(buffer) >= self._batch_size:
                await asyncio.sleep(0)  # a full batch: let it go out while the producer goes on

    async def send_many(self, actions: Iterable[common_pb2.PlayerAction]) -> None:
        """Queue actions in order: one call per tick's worth instead of one ``send`` per action.

        Waits while the buffer is full, so a list larger than the buffer goes in as room frees.
        Raises when the stream failed for good. If cancelled while waiting, the actions before
        the wait are queued (and will be sent), the rest are not."""
        if self._fatal is not None:
            raise self._fatal
        actions = actions if isinstance(actions, list) else list(actions)
        for action in actions:
            if not action.event_id:
                action.event_id = uuid.uuid4().hex
        at = 0
        while at < len(actions):
            room = self._capacity - len(self._buffer)
            if room <= 0:
                await self._until_space()
                continue
            chunk = actions[at:at + room] if at or room < len(actions) else actions
            self._buffer.extend(chunk)
            at += len(chunk)
            self._added(len(chunk))

    def _added(self, n: int) -> None:
        if not self._pending:
            self._idle.clear()
        self._pending += n
        if len(self._buffer) >= self._want:
            self._ready.set()

    async def _until_space(self) -> None:
        while len(self._buffer) >= self._capacity:
            self._space.clear()
            await self._space.wait()
            if self._fatal is not None:
                raise self._fatal

    async def flush(self, timeout: float) -> Report:
        """Wait until everything sent so far is acknowledged, or ``timeout``; the report says what was not."""
        try:
            await asyncio.wait_for(self._until_idle(), timeout)
        except TimeoutError:
            pass
        return self.report()

    async def close(self, timeout: float) -> Report:
        report = await self.flush(timeout)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        return report

    def report(self) -> Report:
        r = self._report
        return Report(r.accepted, r.duplicates, r.rejected, self._pending, r.reconnects, list(r.errors))

    async def _until_idle(self) -> None:
        while self._pending and self._fatal is None:
            self._idle.clear()
            await self._idle.wait()

    # --- the connection -------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            call = self._stub.StreamActions(metadata=self._metadata())
            writer = asyncio.create_task(self._write(call))
            reader = asyncio.create_task(self._read(call))
            try:
                done, _ = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when close() cancels this task: no orphaned writer or reader
                for t in (writer, reader):
                    t.cancel()
                results = await asyncio.gather(writer, reader, return_exceptions=True)
                call.cancel()
            err = next((r for r in results if isinstance(r, grpc.RpcError)), None)
            if err is not None and err.code() in FATAL:
                self._fatal = err
                self._report.errors.append(f"{err.code().name}: {err.details()}")
                self._idle.set()
                self._space.set()  # producers waiting for room raise instead of waiting forever
                return
            if err is None and reader in done and not reader.cancelled() and reader.exception() is None:
                attempt = 0  # the server ended the stream cleanly (draining): reconnect at once
            else:
                attempt += 1
            self._report.reconnects += 1
            log.warning("action stream interrupted (%s); resending %d batches",
                        err.code().name if err is not None else "closed", len(self._unacked))
            await asyncio.sleep(self._backoff.delay(min(attempt, 6), err) if attempt else 0)

    async def _write(self, call) -> None:
        for batch in list(self._unacked.values()):  # resend what the last connection left unacknowledged
            async with self._write_lock:
                await call.write(batch)
        while True:
            await self._window.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._window.release()
                raise
            self._unacked[batch.sequence] = batch
            async with self._write_lock:
                await call.write(batch)

    async def _next_batch(self) -> ingest_pb2.StreamActionsRequest:
        """Up to ``batch_size`` actions: waits for the first, then up to ``linger`` for a full batch.
        Nothing leaves the buffer before the batch is built, so a cancelled wait loses nothing."""
        buffer, size = self._buffer, self._batch_size
        while not buffer:
            await self._until_buffered(1, None)
        if len(buffer) < size and self._linger > 0:
            await self._until_buffered(size, self._linger)
        take = buffer.popleft
        actions = [take() for _ in range(min(size, len(buffer)))]
        self._space.set()
        self._sequence += 1
        return ingest_pb2.StreamActionsRequest(sequence=self._sequence, actions=actions, producer=self._key)

    async def _until_buffered(self, n: int, timeout: float | None) -> None:
        self._want = n
        self._ready.clear()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._want = NOT_WAITING

    async def _read(self, call) -> None:
        async for ack in call:
            batch = self._unacked.get(ack.sequence)
            if batch is None:
                continue  # an ack for a batch already settled on an earlier connection
            code = ack.error.code if ack.HasField("error") else 0
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]:
                delay = status_retry_delay(ack.error) or self._backoff.delay(1)
                asyncio.get_running_loop().call_later(delay, self._resend_later, call, batch)
                continue
            if code:
                self._report.rejected += len(batch.actions)
                self._report.errors.append(f"batch {ack.sequence}: code {code}: {ack.error.message}")
            else:
                self._report.accepted += ack.accepted_count
                self._report.duplicates += len(batch.actions) if ack.duplicate else ack.duplicate_count
            del self._unacked[ack.sequence]
            self._window.release()
            self._pending -= len(batch.actions)
            if not self._pending:
                self._idle.set()

    def _resend_later(self, call, batch: ingest_pb2.StreamActionsRequest) -> None:
        async def resend() -> None:
            if batch.sequence in self._unacked and not call.done():
                async with self._write_lock:
                    await call.write(batch)
        asyncio.ensure_future(resend())
