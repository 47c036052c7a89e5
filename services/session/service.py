"""The session service as the runtime sees it: config, Redis clients, domain objects, servicers.

Redis key layout and eviction safety: see KEYS.md and store/keys.py.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from services.runtime import Service, ServiceSpec

from . import metrics, servicer
from .ban_watch import BanWatch
from .bans import Bans
from .cache import Cache
from .clock import Clock, SystemClock
from .config import SessionConfig
from . import issue_token
from .gateway import GatewayAuth, parse_role_limits
from .notifications import BLOCK_MS, Notifications
from .rate_limit import RateLimits
from .sessions import Sessions
from .store.ban_changes import BanChangeStore
from .store.bans import BanStore
from .store.cache import CacheStore
from .store.client import connect
from .store.gateway import GatewayStore
from .store.notifications import NotificationStore
from .store.rate_limit import RateLimitStore
from .store.sessions import SessionStore

log = logging.getLogger("banhammer.session")


class Session(Service):
    def __init__(self, conf: SessionConfig, clock: Clock | None = None) -> None:
        self.conf = conf
        self.clock = clock or SystemClock()
        t = conf.redis_timeout_seconds
        self.redis = connect(conf.redis_url, max_connections=conf.redis_max_connections, timeout=t)
        # Blocking XREADs hold a connection each, so subscribers get their own pool.
        self.blocking = connect(conf.redis_url, max_connections=conf.notify_max_subscribers, timeout=t,
                                socket_timeout=BLOCK_MS / 1000 + t)
        self.sessions = Sessions(SessionStore(self.redis), self.clock, conf.session_default_ttl_seconds * 1000,
                                 conf.session_max_lifetime_seconds * 1000)
        self.bans = Bans(BanStore(self.redis, conf.ban_history_days * 86400_000, conf.redis_waitaof), self.clock)
        self.cache = Cache(CacheStore(self.redis), self.clock)
        self.notifications = Notifications(
            NotificationStore(self.redis, self.blocking, conf.notify_max_len, conf.notify_retention_seconds * 1000),
            conf.notify_max_subscribers)
        self.ban_watch = BanWatch(BanChangeStore(self.redis, self.blocking), self.notifications)
        self.rate_limits = RateLimits(RateLimitStore(self.redis))
        self.gateway = GatewayAuth(GatewayStore(self.redis), self.clock, parse_role_limits(conf.gateway_rate_limits))
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def start(self) -> None:
        await self.redis.ping()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="session-sweep")

    async def check(self) -> None:
        await self.redis.ping()

    async def sweep(self) -> tuple[int, int]:
        """Deletes expired sessions and bans (they already read as gone), then records how many are
        active (the gauges); returns the counts deleted."""
        swept = await self.sessions.sweep(), await self.bans.sweep()
        metrics.ACTIVE_SESSIONS.set(await self.sessions.active())
        metrics.ACTIVE_BANS.set(await self.bans.active())
        return swept

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.conf.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - Redis down: the next round retries
                log.warning("sweep failed", extra={"reason": f"{type(exc).__name__}: {exc}"})

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.redis.aclose()
        await self.blocking.aclose()


SPEC = ServiceSpec("session", SessionConfig, Session, default_port=50053, metrics_port=9463, commands={"issue-token": issue_token.COMMAND})
