"""Driving `deploy/local/stack.py` from tests: its own state directory and free ports for every
process (never another engineer's), commands run as the README runs them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

from .paths import REPO

STACK = REPO / "deploy" / "local" / "stack.py"
PORT_VARS = ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "LOCAL_INFLUX_PORT", "LOCAL_INFLUX_RPC_PORT", "LOCAL_ENVOY_PORT",
             "LOCAL_ENVOY_ADMIN_PORT", "LOCAL_INGEST_PORT", "LOCAL_QUERY_PORT", "LOCAL_SESSION_PORT",
             "LOCAL_ENERGY_PORT", "LOCAL_ENVOY_STATS_PORT", "LOCAL_PROMETHEUS_PORT", "LOCAL_INGEST_METRICS_PORT",
             "LOCAL_QUERY_METRICS_PORT", "LOCAL_SESSION_METRICS_PORT", "LOCAL_ENERGY_METRICS_PORT", "LOCAL_CONSOLE_PORT",
             "LOCAL_ENVOY_MTLS_PORT")


def distinct_ports(n: int) -> list[int]:
    """``n`` free ports, all different: each stays bound until all are chosen (free_port() called n
    times may hand out the same port twice, which the stack refuses as a configuration error)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def stack_env(state: Path, **extra: str) -> dict[str, str]:
    ports = dict(zip(PORT_VARS, map(str, distinct_ports(len(PORT_VARS)))))
    return {**os.environ, "LOCAL_STATE_DIR": str(state), "LOG_LEVEL": "WARNING", "LOCAL_HEALTH_TIMEOUT": "45",
            **ports, **extra}


def stack(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STACK), command], env=env, capture_output=True, text=True, timeout=120)


def require_stack_tools() -> None:
    """The local stack needs Prometheus (Debian package `prometheus`) besides the stores."""
    import shutil

    from .require import missing

    for binary, package in (("prometheus", "prometheus"), ("promtool", "prometheus"), ("influxd", "influxdb")):
        if not shutil.which(binary):
            missing(f"{binary} not installed: apt-get install {package} (.ci/run does)")
