"""`deploy/local/stack.py up` then `down` on alternate ports: all SERVING through Envoy, and
nothing left running afterwards."""

import os
import subprocess
import sys

import pytest

from tests.harness import free_port
from tests.harness.paths import DESCRIPTOR, GEN, REPO, missing_services

STACK = REPO / "deploy" / "local" / "stack.py"
PORT_VARS = ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "LOCAL_INFLUX_PORT", "LOCAL_INFLUX_RPC_PORT", "LOCAL_ENVOY_PORT",
             "LOCAL_ENVOY_ADMIN_PORT", "LOCAL_INGEST_PORT", "LOCAL_QUERY_PORT", "LOCAL_SESSION_PORT",
             "LOCAL_ENERGY_PORT")


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def test_stack_up_then_down_leaves_nothing(tmp_path):
    if not GEN.is_dir() or not DESCRIPTOR.exists():
        pytest.skip("generated code missing: run `make gen`")
    if missing := missing_services():
        pytest.skip(f"service modules not written yet: {', '.join(missing)}")
    state = tmp_path / "stack"
    env = {**os.environ, "LOCAL_STATE_DIR": str(state), "LOG_LEVEL": "WARNING", "LOCAL_HEALTH_TIMEOUT": "45",
           **{var: str(free_port()) for var in PORT_VARS}}

    def stack(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(STACK), command], env=env, capture_output=True, text=True,
                              timeout=120)

    try:
        up = stack("up")
        assert up.returncode == 0, up.stdout + up.stderr
        for name in ("ingest", "query", "session", "energy"):
            assert any(line.split() == [name, "SERVING"] for line in up.stdout.splitlines()), up.stdout
        again = stack("up")  # idempotent: everything kept
        assert again.returncode == 0, again.stdout + again.stderr
        status = stack("status")
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "no process left behind" in down.stdout
    assert processes_mentioning(str(state)) == []
    assert processes_mentioning(f"127.0.0.1:{env['LOCAL_REDIS_PORT']}") == []
    assert not list((state / "run").glob("*.pid"))
