"""`deploy/local/stack.py up` then `down` on alternate ports: all SERVING through Envoy, and
nothing left running afterwards; a failed `up` leaves nothing running either."""

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.harness.fixtures import require_generated_code
from tests.harness.paths import REPO

STACK = REPO / "deploy" / "local" / "stack.py"
PORT_VARS = ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "LOCAL_INFLUX_PORT", "LOCAL_INFLUX_RPC_PORT", "LOCAL_ENVOY_PORT",
             "LOCAL_ENVOY_ADMIN_PORT", "LOCAL_INGEST_PORT", "LOCAL_QUERY_PORT", "LOCAL_SESSION_PORT",
             "LOCAL_ENERGY_PORT", "LOCAL_CONSOLE_PORT")


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def stack_env(state: Path, **extra: str) -> dict[str, str]:
    """The stack on its own state directory and on free ports (never another engineer's)."""
    return {**os.environ, "LOCAL_STATE_DIR": str(state), "LOG_LEVEL": "WARNING", "LOCAL_HEALTH_TIMEOUT": "45",
            **{var: str(free_port()) for var in PORT_VARS}, **extra}


def stack(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STACK), command], env=env, capture_output=True, text=True, timeout=120)


def assert_nothing_left(env: dict[str, str]) -> None:
    state = Path(env["LOCAL_STATE_DIR"])
    assert processes_mentioning(str(state)) == []
    assert processes_mentioning(f"127.0.0.1:{env['LOCAL_REDIS_PORT']}") == []
    assert processes_mentioning(f"--port {env['LOCAL_REDIS_PORT']}") == []
    assert not list((state / "run").glob("*.pid"))


def test_stack_up_then_down_leaves_nothing(tmp_path):
    require_generated_code()
    env = stack_env(tmp_path / "stack")
    try:
        up = stack(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        for name in ("ingest", "query", "session", "energy"):
            assert any(line.split() == [name, "SERVING"] for line in up.stdout.splitlines()), up.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{env['LOCAL_ENVOY_PORT']}/console/", timeout=10) as page:
            assert page.status == 200 and b"BanHammer console" in page.read()  # the console, through the gateway
        again = stack(env, "up")  # idempotent: everything kept
        assert again.returncode == 0, again.stdout + again.stderr
        status = stack(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        down = stack(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "no process left behind" in down.stdout
    assert_nothing_left(env)


@pytest.mark.parametrize("variable", ["LOCAL_QUERY_PORT", "LOCAL_ENVOY_PORT"])
def test_up_with_a_port_in_use_starts_nothing(tmp_path, variable):
    """Every port is checked before anything starts; the error is one line naming the port."""
    require_generated_code()
    env = stack_env(tmp_path / "stack")
    with socket.create_server(("127.0.0.1", int(env[variable]))):
        up = stack(env, "up")
    assert up.returncode == 2, up.stdout + up.stderr
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and env[variable] in lines[0] and variable in lines[0], up.stderr
    assert "Traceback" not in up.stdout + up.stderr
    assert_nothing_left(env)


def test_up_that_fails_midway_stops_what_it_started(tmp_path):
    """The stores start, then every service refuses its configuration: `up` fails and stops the
    stores again (and Envoy), where it used to leave them running."""
    require_generated_code()
    env = stack_env(tmp_path / "stack", GRPC_MAX_CONCURRENT_RPCS="many")
    try:
        up = stack(env, "up")
        assert up.returncode == 2, up.stdout + up.stderr
        assert "GRPC_MAX_CONCURRENT_RPCS" in up.stderr  # the services' logs' tails
        assert "stopped what this run had started: " in up.stderr and "postgres" in up.stderr
        assert up.stderr.strip().splitlines()[-1].startswith("python deploy/local/stack.py: not SERVING"), up.stderr
        assert "Traceback" not in up.stdout + up.stderr
        assert_nothing_left(env)
    finally:
        stack(env, "down")
