"""A blocking facade for game servers without asyncio: the async client on a background loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from banhammer.common.v1 import common_pb2

from .actions import ActionStream, Report
from .bans import BanState
from .client import Client

T = TypeVar("T")


class SyncClient:
    """``SyncClient.connect(target, ...)`` takes Client.connect's arguments; call ``close()`` at exit."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="banhammer-client", daemon=True)
        self._thread.start()
        self._client: Client | None = None
        self._stream: ActionStream | None = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @classmethod
    def connect(cls, target: str, **kwargs) -> SyncClient:
        sync = cls()
        sync._client = sync._run(Client.connect(target, **kwargs))
        return sync

    @property
    def client(self) -> Client:
        assert self._client is not None, "use SyncClient.connect()"
        return self._client

    def is_banned(self, subject: str) -> bool:
        cached = self.client.bans.cached(subject)  # the common case never crosses threads
        return cached if cached is not None else self._run(self.client.is_banned(subject))

    def check_bans(self, subjects: Iterable[str]) -> dict[str, BanState]:
        return self._run(self.client.check_bans(list(subjects)))

    def send_action(self, action: common_pb2.PlayerAction, **stream_options) -> None:
        """Queue an action on this client's action stream (created on first use with the options)."""
        async def send() -> None:
            if self._stream is None:
                self._stream = self.client.action_stream(**stream_options)
            await self._stream.send(action)
        self._run(send())

    def send_actions(self, actions: Iterable[common_pb2.PlayerAction], **stream_options) -> None:
        """Queue a tick's worth of actions in order: one crossing to the client's loop, not one each."""
        actions = list(actions)

        async def send() -> None:
            if self._stream is None:
                self._stream = self.client.action_stream(**stream_options)
            await self._stream.send_many(actions)
        self._run(send())

    def flush(self, timeout: float = 5.0) -> Report:
        if self._stream is None:
            return Report()
        return self._run(self._stream.flush(timeout))

    def close(self, timeout: float = 5.0) -> None:
        try:
            if self._client is not None:
                self._run(self.client.close(timeout))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
