"""Every command line of the project answers a wrong argument or value with one clear line on
stderr and a non-zero exit, never a traceback (services.runtime.cli).

Run with the venv's python and no PYTHONPATH, as the README's commands are typed."""

import os
import subprocess
import sys

import pytest

from tests.harness import free_port
from tests.harness.paths import REPO

CLOSED = f"127.0.0.1:{free_port()}"  # nothing listens here
STORES = {"REDIS_URL": f"redis://{CLOSED}/0", "TIMESCALEDB_URL": f"postgresql://x@{CLOSED}/x",
          "ENERGY_DATABASE_URL": f"postgresql://x@{CLOSED}/x", "INFLUXDB_URL": f"http://{CLOSED}"}
TOKEN = ("-m", "services.session", "issue-token", "--subject", "ops")

CASES = {
    # the example: a lifetime below the minimum (validated before Redis is touched)
    "issue-token ttl too short": ([*TOKEN, "--role", "admin", "--ttl-hours", "0.001"], 2, "ttl: must be"),
    "issue-token ttl zero": ([*TOKEN, "--role", "admin", "--ttl-hours", "0"], 2, "ttl: must be"),
    "issue-token ttl nan": ([*TOKEN, "--role", "admin", "--ttl-hours", "nan"], 2, "finite number"),
    "issue-token unknown role": ([*TOKEN, "--role", "root"], 2, "invalid choice"),
    "issue-token missing role": (list(TOKEN), 2, "--role"),
    "issue-token redis down": ([*TOKEN, "--role", "admin"], 1, "unavailable"),
    "unknown command": (["-m", "services.query", "compact"], 2, "no command 'compact'"),
    "unknown option": (["-m", "services.energy", "--bogus"], 2, "no command '--bogus'"),
    "extra argument": (["-m", "services.ingest", "migrate", "--all"], 2, "takes no arguments"),
    "migrate, database down": (["-m", "services.energy", "migrate"], 1, "Connect call failed"),
    "bad configuration": (["-m", "services.energy", "migrate"], 2, "ENERGY_POOL_SIZE"),
    "runtime unknown target": (["-m", "services.runtime", "--target", "ingest,billing"], 2, "'billing'"),
    "healthcheck no address": (["-m", "services.runtime.healthcheck"], 2, "--addr"),
    "stack unknown command": (["deploy/local/stack.py", "start"], 2, "invalid choice"),
    "stack bad port": (["deploy/local/stack.py", "up"], 2, "LOCAL_PG_PORT"),
    "render unknown target": (["deploy/envoy/render.py", "--target", "nomad"], 2, "invalid choice"),
    "render bad upstream": (["deploy/envoy/render.py", "--target", "local", "--upstream", "ingest=x"], 2, "host:port"),
    "descriptor missing file": (["deploy/envoy/descriptor.py", "/nonexistent.pb"], 1, "No such file"),
    "config table argument": (["scripts/config_table.py", "--markdown"], 2, "unrecognized"),
    "ops unknown command": (["-m", "ops", "vacuum"], 2, "invalid choice"),
    "ops restore without a directory": (["-m", "ops", "restore"], 2, "DIR"),
    "ops restore of no backup": (["-m", "ops", "restore", "/nonexistent"], 2, "holds no manifest.json"),
    "ops backup, stores down": (["-m", "ops", "backup", "/nonexistent/new"], 1, "Connect call failed"),
    "prometheus generate unknown target": (["deploy/prometheus/generate.py", "--target", "nomad"], 2, "invalid choice"),
    "demo bad number": (["scripts/demo.py", "--players", "many"], 2, "--players"),
    "bench all bad option": (["-m", "bench", "--fast"], 2, "unrecognized"),
    **{f"bench {name} bad option": (["-m", f"bench.{name}", "--fast"], 2, "unrecognized")
       for name in ("ingest", "query", "session", "energy", "metrics", "sdk", "scale", "compression")},
    "certs missing out": (["deploy/tls/certs.py"], 2, "--out"),
    "certs bad client name": (["deploy/tls/certs.py", "--out", "/tmp/banhammer-cli-test-tls", "--client", "a b"], 2,
                              "expected a path like game/eu-1"),
    "certs bad days": (["deploy/tls/certs.py", "--out", "/tmp/banhammer-cli-test-tls", "--days", "0"], 2,
                       "--days must be at least 1"),
    "render bad mtls port": (["deploy/envoy/render.py", "--target", "local", "--mtls-dir", "/x",
                                 "--mtls-port", "0x"], 2, "invalid int"),
}
ENV = {"bad configuration": {"ENERGY_POOL_SIZE": "eight"}, "stack bad port": {"LOCAL_PG_PORT": "fifty"}}


def run_cli(argv: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(STORES, LOG_LEVEL="WARNING", **(extra_env or {}))
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_is_one_line(case):
    argv, status, expected = CASES[case]
    done = run_cli(argv, ENV.get(case))
    assert done.returncode == status, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("argv", [
    ["-m", "services.session", "issue-token", "--help"],  # no REDIS_URL needed for --help
    ["-m", "services.ingest", "--help"],
    ["deploy/local/stack.py", "--help"],
    ["-m", "bench.ingest", "--help"],  # the README's benchmark commands, as written
    ["-m", "bench.query", "--help"],
])
def test_help_works_without_pythonpath_or_configuration(argv):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REDIS_URL", "TIMESCALEDB_URL")}
    done = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: "), done.stdout + done.stderr
