"""An action stream for game servers: batched by size and time, bounded, resent until acknowledged.

``send()`` waits while the buffer is full (back-pressure, never a silent drop). Batches carry the
producer key and a sequence (and every action an event id), so a batch resent after a reconnect (the gateway or ingest restarted,
the stream was cut) is stored once: the ingest service answers a repeat with ``duplicate``. After
a reconnect the unacknowledged batches are resent first, identically and in order. A batch refused
with RESOURCE_EXHAUSTED is resent after the server's RetryInfo delay; one refused as invalid is
dropped and counted in the report.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import grpc

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from .connection import Metadata
from .retry import Backoff, status_retry_delay

log = logging.getLogger("banhammer_client.actions")

# Failures of the whole stream after which reconnecting cannot help.
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
                 max_in_flight: int = 8, backoff: Backoff = Backoff()) -> None:
        self._stub = stub
        self._metadata = metadata
        self._key = ingest_pb2.ProducerKey(producer_id=producer_id or f"sdk:{uuid.uuid4().hex}",
                                           epoch=time.time_ns() if epoch is None else epoch)
        self._batch_size = batch_size
        self._linger = linger
        self._queue: asyncio.Queue[common_pb2.PlayerAction] = asyncio.Queue(buffer)
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
        self._idle.clear()
        self._pending += 1
        try:
            await self._queue.put(action)
        except BaseException:
            self._pending -= 1
            raise

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
        actions = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._linger
        while len(actions) < self._batch_size:
            try:
                actions.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                actions.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        self._sequence += 1
        return ingest_pb2.StreamActionsRequest(sequence=self._sequence, actions=actions, producer=self._key)

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
