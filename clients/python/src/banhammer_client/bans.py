"""Ban checks answered from a local cache kept exact by BanService.WatchBans.

The cache holds the subjects this game server asked about (and every ban pushed since). While the
watch stream is synced, a cached answer is exact: every ban and unban after the cached read
arrives on the stream, in order. A subject not cached is fetched with CheckBans; concurrent misses
in the same event-loop turn share one call. After a reconnect the watch resumes from its last
position (the missed changes are replayed), or, when they are no longer retained, the server says
reset and the cache starts empty. While not synced, answers come from the server, and from the
cache only when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc

from .connection import Metadata
from .retry import RETRYABLE, Backoff

log = logging.getLogger("banhammer_client.bans")

MAX_BATCH = 1000  # CheckBans' limit


@dataclass(frozen=True, slots=True)
class BanState:
    """A subject's ban as the cache knows it. ``expires_at`` is Unix seconds (None: permanent)."""

    subject: str
    banned: bool
    ban_id: str = ""
    reason: str = ""
    expires_at: float | None = None

    def active(self, now: float) -> bool:
        return self.banned and (self.expires_at is None or now < self.expires_at)

    @classmethod
    def of(cls, subject: str, banned: bool, ban: ban_pb2.Ban) -> BanState:
        if not banned:
            return cls(subject, False)
        expires = None if ban.permanent else ban.expire_time.seconds + ban.expire_time.nanos / 1e9
        return cls(subject, True, ban.ban_id, ban.reason, expires)


class BanCache:
    def __init__(self, stub: ban_pb2_grpc.BanServiceStub, metadata: Metadata, *, timeout: float = 5.0,
                 max_subjects: int = 1_000_000, backoff: Backoff = Backoff()) -> None:
        self._stub = stub
        self._metadata = metadata
        self._timeout = timeout
        self._max = max_subjects
        self._backoff = backoff
        self._states: dict[str, BanState] = {}
        self._synced = asyncio.Event()
        self.position = ""  # last WatchBans position applied
        self._epoch = 0  # bumped by a reset: fetches begun before it are not cached
        self._waiting: dict[str, asyncio.Future[BanState]] = {}  # misses of this turn, not yet sent
        self._in_flight: dict[str, asyncio.Future[BanState]] = {}  # sent: later misses wait for these
        self._tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones
        self._changed: set[str] = set()  # changes that arrived while the subject was being fetched
        self._watcher: asyncio.Task | None = None
        self.changes_applied = 0
        self.last_change_at = 0.0  # time.monotonic() of the last applied change (benchmarks)

    # --- answers ----------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def cached(self, subject: str) -> bool | None:
        """The cached answer when it is exact (synced and cached), else None. No I/O."""
        if not self._synced.is_set():
            return None
        state = self._states.get(subject)
        return None if state is None else state.active(time.time())

    async def is_banned(self, subject: str) -> bool:
        answer = self.cached(subject)
        if answer is not None:
            return answer
        return (await self.state(subject)).active(time.time())

    async def state(self, subject: str) -> BanState:
        """The subject's ban state: from the cache when exact, else fetched (coalesced)."""
        if self._synced.is_set() and (known := self._states.get(subject)) is not None:
            return known
        try:
            return await self._fetch(subject)
        except grpc.RpcError as err:
            stale = self._states.get(subject)
            if stale is not None and err.code() in RETRYABLE:
                return stale  # server unreachable: the last known answer beats none
            raise

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    # --- misses: one CheckBans per event-loop turn ---------------------------------------------
    def _fetch(self, subject: str) -> asyncio.Future[BanState]:
        waiting = self._in_flight.get(subject) or self._waiting.get(subject)
        if waiting is None:
            if not self._waiting:
                asyncio.get_running_loop().call_soon(self._send_waiting)
            waiting = self._waiting[subject] = asyncio.get_running_loop().create_future()
        return asyncio.shield(waiting)

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, {}
        subjects = list(waiting)
        for i in range(0, len(subjects), MAX_BATCH):
            chunk = {s: waiting[s] for s in subjects[i:i + MAX_BATCH]}
            task = asyncio.ensure_future(self._check(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _check(self, futures: dict[str, asyncio.Future[BanState]]) -> None:
        epoch, subjects = self._epoch, list(futures)
        self._in_flight.update(futures)
        try:
            states = await self.check(subjects)
        except BaseException as exc:  # every waiter gets the failure, nothing is cached
            for f in futures.values():
                if not f.done():
                    f.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            for s in subjects:
                self._in_flight.pop(s, None)
        for state in states:
            # A change pushed while this read was in flight is at least as new as the read.
            if epoch == self._epoch and state.subject not in self._changed:
                self._remember(state)
            self._changed.discard(state.subject)
            f = futures[state.subject]
            if not f.done():
                f.set_result(self._states.get(state.subject, state))

    async def check(self, subjects: list[str]) -> list[BanState]:
        """CheckBans for up to 1,000 subjects (one call, retried on transient failures)."""
        attempt = 0
        while True:
            try:
                out = await self._stub.CheckBans(ban_pb2.CheckBansRequest(subjects=subjects),
                                                 metadata=self._metadata(), timeout=self._timeout)
                return [BanState.of(r.subject, r.banned, r.ban) for r in out.results]
            except grpc.RpcError as err:
                attempt += 1
                if err.code() not in RETRYABLE or attempt >= self._backoff.attempts:
                    raise
                await asyncio.sleep(self._backoff.delay(attempt, err))

    def _remember(self, state: BanState) -> None:
        if state.subject not in self._states and len(self._states) >= self._max:
            self._states.pop(next(iter(self._states)))  # oldest first; it is fetched again if asked
        self._states[state.subject] = state

    # --- the watch ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_forever(), name="banhammer-ban-watch")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        self._synced.clear()

    async def _watch_forever(self) -> None:
        attempt = 0
        while True:
            call = self._stub.WatchBans(ban_pb2.WatchBansRequest(resume_from=self.position),
                                        metadata=self._metadata())
            try:
                async for event in call:
                    attempt = 0
                    self._apply(event)
            except grpc.RpcError as err:
                log.warning("ban watch interrupted (%s); reconnecting", err.code().name)
                last = err
            else:
                last = None
            finally:
                self._synced.clear()
                call.cancel()
            attempt += 1
            await asyncio.sleep(self._backoff.delay(min(attempt, 6), last))

    def _apply(self, event: ban_pb2.WatchBansResponse) -> None:
        if event.WhichOneof("event") == "synced":
            if event.synced.reset:
                self._states.clear()
                self._epoch += 1
            self._synced.set()
        else:
            c = event.change
            self._remember(BanState.of(c.subject, c.banned, c.ban))
            if c.subject in self._in_flight:
                self._changed.add(c.subject)
            self.changes_applied += 1
            self.last_change_at = time.monotonic()
        self.position = event.position

    def forget(self, subjects: Iterable[str]) -> None:
        for s in subjects:
            self._states.pop(s, None)
