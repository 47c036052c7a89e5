"""grpc.aio server bootstrap shared by every service.

``serve(["ingest"])`` runs one service as in production; ``serve(["ingest", "query"])``
hosts several in one process (tests, small installs), like Loki's ``-target``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import signal
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import cli
from .admission import AdmissionInterceptor
from . import config as cfg
from .config import env
from .interceptors import ErrorInterceptor
from .metrics import MetricsInterceptor, MetricsServer, serve_metrics
from .revocations import Revocations
from .logs import setup_logging
from .service import Command, Service, ServiceSpec
from .telemetry import setup_telemetry, shutdown_telemetry

log = logging.getLogger("banhammer.runtime")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

KNOWN_TARGETS = ("ingest", "query", "session", "energy")
#: Health name that says only "this process is alive" (Kubernetes liveness): a store outage makes
#: the services NOT_SERVING (readiness) but must not get the pod restarted.
LIVENESS = "liveness"


@dataclass(frozen=True)
class ServerConfig:
    host: str = env("GRPC_HOST", "0.0.0.0", doc="Address the gRPC server binds")
    port: int = env("GRPC_PORT", 0, doc="gRPC port (0: the service's default port)")
    max_message_bytes: int = env("GRPC_MAX_MESSAGE_BYTES", 8 * 1024 * 1024, doc="Largest request or response message")
    max_concurrent_rpcs: int = env("GRPC_MAX_CONCURRENT_RPCS", 2000, doc="RPCs (streams included, health checks not) beyond this get RESOURCE_EXHAUSTED with RetryInfo")
    grace_seconds: float = env("SHUTDOWN_GRACE_SECONDS", 10.0, doc="How long SIGTERM waits for in-flight RPCs")
    health_interval_seconds: float = env("HEALTH_INTERVAL_SECONDS", 2.0, doc="How often stores are probed")
    log_level: str = env("LOG_LEVEL", "INFO", doc="Log level (JSON logs on stderr)")
    otlp_endpoint: str = env("OTEL_EXPORTER_OTLP_ENDPOINT", "", doc="OTLP/gRPC collector for traces (unset: no export)")
    session_service_addr: str = env("SESSION_SERVICE_ADDR", "", doc="host:port of the session service; gateway streams end when their session is revoked (a session service follows itself)")
    trace_sample_ratio: float = env("OTEL_TRACES_SAMPLER_ARG", 1.0, doc="Share of new traces recorded when exporting; a caller's sampling decision wins")
    metrics_port: int | None = env("METRICS_PORT", None, doc="Prometheus /metrics port (unset: 9461 ingest, 9462 query, 9463 session, 9464 energy for a single service, skipped if taken; 0: off)")


def load_spec(target: str | ServiceSpec) -> ServiceSpec:
    if isinstance(target, ServiceSpec):  # tests host their own specs
        return target
    if target not in KNOWN_TARGETS:
        raise cfg.ConfigError(f"unknown target {target!r}; expected one of {', '.join(KNOWN_TARGETS)}")
    return importlib.import_module(f"services.{target}.service").SPEC


def server_options(conf: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", conf.max_message_bytes),
        ("grpc.max_send_message_length", conf.max_message_bytes),
        # Keep idle game-server connections alive through load balancers, but refuse
        # clients that ping more often than every 10 s.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class Runtime:
    """A running process: one gRPC server hosting one or more services."""

    targets: list[str | ServiceSpec]
    conf: ServerConfig
    services: dict[str, Service] = field(default_factory=dict)
    port: int = 0
    metrics: MetricsServer | None = None

    def __post_init__(self) -> None:
        self.health = health.aio.HealthServicer()
        self._draining = False
        self._started: set[str] = set()
        self._ready: dict[str, bool] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def build(self, environ=None) -> None:
        self.specs = {spec.name: spec for spec in map(load_spec, self.targets)}
        self.targets = list(self.specs)
        self.revocations = Revocations(self.conf.session_service_addr)
        self.admission = AdmissionInterceptor(self.conf.max_concurrent_rpcs)
        self.server = grpc.aio.server(
            # The first is outermost: the admission limit's refusals are mapped like any other error,
            # and metrics see the status the caller gets, refusals included.
            interceptors=[MetricsInterceptor(), ErrorInterceptor(self.revocations), self.admission],
            options=server_options(self.conf),
        )
        names: list[str] = []
        for target, spec in self.specs.items():
            service_conf = cfg.load(spec.config, environ)
            built = spec.build(service_conf)
            service = await built if inspect.isawaitable(built) else built
            service.register(self.server)
            self.services[target] = service
            names.extend(service.service_names)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        for name in ["", *names]:
            await self.health.set(name, NOT_SERVING)
        await self.health.set(LIVENESS, SERVING)
        default_port = self.specs[self.targets[0]].default_port
        port = self.conf.port or (default_port if len(self.targets) == 1 else 0)
        self.port = self.server.add_insecure_port(f"{self.conf.host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind {self.conf.host}:{port} (port taken?)")
        # Several services in one process have no single default metrics port: off unless set.
        default_metrics = self.specs[self.targets[0]].metrics_port if len(self.targets) == 1 else 0
        self.metrics = serve_metrics(self.conf.host, self.conf.metrics_port, default_metrics)
        if not self.revocations.session_addr and "session" in self.specs:
            self.revocations.session_addr = f"127.0.0.1:{self.port}"  # the session service follows itself

    async def start(self) -> None:
        await self.server.start()
        log.info("listening", extra={"targets": self.targets, "port": self.port})
        for target in self.targets:
            self._tasks.append(asyncio.create_task(self._watch(target), name=f"health-{target}"))

    async def _watch(self, target: str) -> None:
        """Start a service (retrying until its stores answer), then keep probing them."""
        service = self.services[target]
        delay = 0.2
        while not self._draining:
            try:
                if target not in self._started:
                    await service.start()
                    self._started.add(target)
                    log.info("service started", extra={"target": target})
                await service.check()
                await self._set(target, SERVING)
                delay = self.conf.health_interval_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a probe failure is a health state
                await self._set(target, NOT_SERVING)
                log.warning("service not ready", extra={"target": target, "reason": f"{type(exc).__name__}: {exc}"})
                delay = min(max(delay * 2, 0.2), self.conf.health_interval_seconds)
            await asyncio.sleep(delay)

    async def _set(self, target: str, status: int) -> None:
        if self._draining:
            return
        self._ready[target] = status == SERVING
        for name in self.services[target].service_names:
            await self.health.set(name, status)
        overall = SERVING if all(self._ready.get(t) for t in self.targets) else NOT_SERVING
        await self.health.set("", overall)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Graceful shutdown: NOT_SERVING first so load balancers move away, then drain."""
        if self._draining:
            return
        self._draining = True
        await self.health.enter_graceful_shutdown()
        log.info("draining", extra={"grace_seconds": self.conf.grace_seconds})
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.revocations.close()
        await self.server.stop(self.conf.grace_seconds)
        for target, service in self.services.items():
            try:
                await service.close()
            except Exception:  # noqa: BLE001 - closing the rest matters more
                log.exception("close failed", extra={"target": target})
        if self.metrics is not None:
            self.metrics.close()
        log.info("stopped")


async def start_runtime(targets: list[str | ServiceSpec], environ=None) -> Runtime:
    """Build and start a runtime (used by ``serve`` and by in-process tests)."""
    conf = cfg.load(ServerConfig, environ)
    runtime = Runtime(targets=targets, conf=conf)
    await runtime.build(environ)
    await runtime.start()
    return runtime


async def _serve(targets: list[str | ServiceSpec]) -> int:
    conf = cfg.load(ServerConfig)
    name = "banhammer-" + "+".join(load_spec(t).name for t in targets)
    setup_logging(name, conf.log_level)
    provider = setup_telemetry(name, otlp_endpoint=conf.otlp_endpoint, sample_ratio=conf.trace_sample_ratio)
    runtime = await start_runtime(targets)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.request_stop)
    await runtime.wait()
    await runtime.stop()
    shutdown_telemetry(provider)
    return 0


async def _command(spec: ServiceSpec, command: str, args: list[str]) -> int:
    prog = f"python -m services.{spec.name} {command}"
    entry = (spec.commands or {})[command]
    if isinstance(entry, Command):
        parser = cli.CommandParser(prog=prog, description=entry.help)
        entry.arguments(parser)
        options = parser.parse_args(args)
        setup_logging(f"banhammer-{spec.name}", cfg.load(ServerConfig).log_level)
        return await entry.run(cfg.load(spec.config), options)
    setup_logging(f"banhammer-{spec.name}", cfg.load(ServerConfig).log_level)
    if len(inspect.signature(entry).parameters) > 1:
        return await entry(cfg.load(spec.config), args)
    if args:
        raise cli.UsageError(f"{command} takes no arguments, got {' '.join(args)!r}")
    return await entry(cfg.load(spec.config))


def _usage(spec: ServiceSpec) -> str:
    lines = [f"usage: python -m services.{spec.name} [command]", "",
             f"Without a command: serve {spec.name} (configured by environment variables, see the README)."]
    for name, entry in (spec.commands or {}).items():
        lines.append(f"  {name:<14} {entry.help if isinstance(entry, Command) else (entry.__doc__ or '').strip()}")
    return "\n".join(lines)


def main(targets: list[str | ServiceSpec], argv: list[str] | None = None, prog: str | None = None) -> int:
    """Entry point: ``python -m services.<name> [command] [arguments]``; errors are one line."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if prog is None:
        prog = f"python -m services.{getattr(targets[0], 'name', targets[0])}"
        if argv and not argv[0].startswith("-"):
            prog += f" {argv[0]}"

    def run() -> int:
        if not argv:
            return asyncio.run(_serve(targets))
        spec = load_spec(targets[0])
        if argv[0] in ("-h", "--help"):
            print(_usage(spec))
            return 0
        if argv[0] not in (spec.commands or {}):
            raise cli.UsageError(f"no command {argv[0]!r}; commands: {', '.join(spec.commands or {}) or 'none'}")
        return asyncio.run(_command(spec, argv[0], argv[1:]))

    return cli.run(run, prog)
