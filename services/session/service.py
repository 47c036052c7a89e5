"""The session service as the runtime sees it: config, Redis, servicers."""

import grpc
import redis.asyncio as redis

from services.runtime import Service, ServiceSpec

from . import servicer
from .config import SessionConfig


class Session(Service):
    def __init__(self, conf: SessionConfig) -> None:
        self.conf = conf
        # Fail fast while Redis is down (UNAVAILABLE), reconnect by itself when it returns.
        self.redis = redis.from_url(conf.redis_url, socket_connect_timeout=1, socket_timeout=2,
                                    health_check_interval=5)

    def register(self, server: grpc.aio.Server) -> None:
        self.service_names = servicer.register(server, self)

    async def check(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


SPEC = ServiceSpec("session", SessionConfig, Session, default_port=50053)
