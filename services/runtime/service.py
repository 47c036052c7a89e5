"""What a service declares to the runtime: its servicers, its stores and its config."""

from __future__ import annotations

import abc
import argparse
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


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class Command:
    """A sub-command of ``python -m services.<name>`` (e.g. ``migrate``), run instead of serving.

    Its arguments are parsed before the service's config is loaded, so ``--help`` and a wrong
    argument need no environment; errors are one line (``services.runtime.cli``)."""

    #: ``async run(config, options) -> exit status``; options is the parsed ``argparse.Namespace``.
    run: Callable[[Any, argparse.Namespace], Awaitable[int]]
    help: str
    #: Adds the command's arguments to its parser (none by default).
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


@dataclass(frozen=True)
class ServiceSpec:
    """A service module's declaration: ``SPEC = ServiceSpec("ingest", IngestConfig, build, 50051)``."""

    name: str
    config: type
    build: Callable[[Any], Service | Awaitable[Service]]
    default_port: int
    #: Prometheus /metrics port when METRICS_PORT is unset (0: none unless set).
    metrics_port: int = 0
    #: Sub-commands run instead of serving: name → ``Command``, or a bare ``async fn(config)`` (no
    #: arguments) or ``async fn(config, argv)`` (parses its own; its usage errors are argparse's).
    commands: dict[str, Command | Callable[..., Awaitable[int]]] | None = None
