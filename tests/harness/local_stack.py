"""Driving `deploy/local/stack.py` from tests: its own state directory and free ports for every
process (never another engineer's), commands run as the README runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .paths import REPO
from .processes import free_port

STACK = REPO / "deploy" / "local" / "stack.py"
PORT_VARS = ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "LOCAL_INFLUX_PORT", "LOCAL_INFLUX_RPC_PORT", "LOCAL_ENVOY_PORT",
             "LOCAL_ENVOY_ADMIN_PORT", "LOCAL_INGEST_PORT", "LOCAL_QUERY_PORT", "LOCAL_SESSION_PORT",
             "LOCAL_ENERGY_PORT", "LOCAL_ENVOY_STATS_PORT", "LOCAL_PROMETHEUS_PORT", "LOCAL_INGEST_METRICS_PORT",
             "LOCAL_QUERY_METRICS_PORT", "LOCAL_SESSION_METRICS_PORT", "LOCAL_ENERGY_METRICS_PORT")


def stack_env(state: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "LOCAL_STATE_DIR": str(state), "LOG_LEVEL": "WARNING", "LOCAL_HEALTH_TIMEOUT": "45",
            **{var: str(free_port()) for var in PORT_VARS}, **extra}


def stack(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STACK), command], env=env, capture_output=True, text=True, timeout=120)


def require_stack_tools() -> None:
    """The local stack needs Prometheus (Debian package `prometheus`) besides the stores."""
    import shutil

    from .require import missing

    for binary, package in (("prometheus", "prometheus"), ("promtool", "prometheus"), ("influxd", "influxdb")):
        if not shutil.which(binary):
            missing(f"{binary} not installed: apt-get install {package} (.ci/run does)")
