"""What a service declares to the runtime: its servicers, its stores and its config."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc


class Service(abc.ABC):
    """A built service: the runtime starts it, probes it, serves it and closes it."""

    #: Fully qualified gRPC service names (``banhammer.ingest.v1.IngestService``), for
    #: health statuses and reflection.
    service_names: Sequence[str] = ()

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers to ``server``."""

    async def start(self) -> None:
        """Connect to stores. Raised errors are retried with backoff; health stays
        NOT_SERVING until this returns."""

    async def check(self) -> None:
        """Probe the stores; raise when one is unreachable (health → NOT_SERVING)."""

    async def close(self) -> None:
        """Release pools and channels after in-flight RPCs have drained."""


@dataclass(frozen=True)
class ServiceSpec:
    """A service module's declaration: ``SPEC = ServiceSpec("ingest", IngestConfig, build, 50051)``."""

    name: str
    config: type
    build: Callable[[Any], Service | Awaitable[Service]]
    default_port: int
    #: Extra sub-commands (e.g. ``migrate``) run instead of serving: name → async fn(config[, args]).
    commands: dict[str, Callable[[Any], Awaitable[int]]] | None = None
