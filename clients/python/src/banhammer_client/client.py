"""The game server's handle on BanHammer: one channel, a local ban cache, action streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import grpc

from banhammer.ingest.v1 import ingest_pb2_grpc
from banhammer.session.v1 import ban_pb2_grpc

from .actions import ActionStream
from .bans import MAX_BATCH, BanCache, BanState
from .connection import ClientCertificate, Metadata, Token, open_channel
from .retry import Backoff


class Client:
    """Use ``await Client.connect(...)``; ``async with`` closes it."""

    def __init__(self, channel: grpc.aio.Channel, *, token: Token | None = None, timeout: float = 5.0,
                 backoff: Backoff = Backoff(), max_cached_subjects: int = 1_000_000) -> None:
        self.channel = channel
        self.metadata = Metadata(token)
        self.timeout = timeout
        self.backoff = backoff
        self.bans = BanCache(ban_pb2_grpc.BanServiceStub(channel), self.metadata, timeout=timeout,
                             max_subjects=max_cached_subjects, backoff=backoff)
        self._ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        self._streams: list[ActionStream] = []

    @classmethod
    async def connect(cls, target: str, *, token: Token | None = None, ca: Path | str | None = None,
                      cert: Path | str | None = None, key: Path | str | None = None, server_name: str = "",
                      watch_bans: bool = True, sync_timeout: float | None = 10.0, **kwargs) -> Client:
        """Connect to the gateway at ``target`` ("host:port"): plaintext, with a bearer ``token``, or
        with a client certificate (``ca``, ``cert``, ``key``: PEM files) on the gateway's mTLS port.
        With ``watch_bans`` the ban cache starts following WatchBans; waits up to ``sync_timeout``
        seconds for it (None: do not wait; answers come from the server until synced)."""
        certificate = None
        if ca or cert or key:
            if not (ca and cert and key):
                raise ValueError("mTLS needs all of ca, cert and key")
            certificate = ClientCertificate(ca, cert, key, server_name)
        client = cls(open_channel(target, certificate), token=token, **kwargs)
        if watch_bans:
            client.bans.start()
            if sync_timeout is not None:
                try:
                    await client.bans.wait_synced(sync_timeout)
                except BaseException:
                    await client.close()
                    raise
        return client

    async def is_banned(self, subject: str) -> bool:
        """Whether ``subject`` is banned now: from the local cache when exact, else CheckBans."""
        return await self.bans.is_banned(subject)

    async def check_bans(self, subjects: Iterable[str]) -> dict[str, BanState]:
        """Ban state of many subjects: cached ones locally, the rest in CheckBans calls of up to 1,000."""
        wanted = list(dict.fromkeys(subjects))
        found = await asyncio.gather(*(self.bans.state(s) for s in wanted))
        return dict(zip(wanted, found))

    async def fetch_bans(self, subjects: list[str]) -> list[BanState]:
        """CheckBans straight from the server, bypassing the cache (in calls of up to 1,000)."""
        out: list[BanState] = []
        for i in range(0, len(subjects), MAX_BATCH):
            out += await self.bans.check(subjects[i:i + MAX_BATCH])
        return out

    def action_stream(self, **kwargs) -> ActionStream:
        """A started ActionStream (see its options: producer_id, batch_size, linger, buffer, ...)."""
        stream = ActionStream(self._ingest, self.metadata, backoff=self.backoff, **kwargs)
        stream.start()
        self._streams.append(stream)
        return stream

    async def close(self, timeout: float = 5.0) -> None:
        """Flush and close the action streams (up to ``timeout`` each), stop the watch, close the channel."""
        for stream in self._streams:
            await stream.close(timeout)
        await self.bans.close()
        await self.channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
