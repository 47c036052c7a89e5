"""Root test configuration: import paths, and the harness fixtures (tests/harness/fixtures.py).

Fixtures for test writers (all session-scoped, real servers on free ports):
  pg_server, postgres_dsn, new_database, redis_server, redis_url, influx_server, influxdb_url,
  suite_env, suite, envoy_factory, gateway, timescaledb_container, influxdb2_container.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

# The harness forks helpers (pg_ctl, servers) from a process whose gRPC threads are busy; gRPC's
# fork handlers then skip their preparation and the child could crash before exec (seen as pg_ctl
# dying with SIGSEGV). Nothing here needs gRPC in a forked child, so the handlers stay off.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "gen", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pytest_postgresql import factories as pg_factories  # noqa: E402
from pytest_redis import factories as redis_factories  # noqa: E402

pytest_plugins = ["tests.harness.fixtures"]

# pg_ctl refuses to run as root; the wrapper runs it as `postgres` when the tests run as root.
postgresql_proc = pg_factories.postgresql_proc(
    executable=str(REPO / "tests" / "harness" / "bin" / "pg_ctl"), host="127.0.0.1", port=None,
)
redis_proc = redis_factories.redis_proc(executable="/usr/bin/redis-server", host="127.0.0.1", port=None)


def pytest_configure(config):
    """A private base temp dir per run. pytest's default (/tmp/pytest-of-<user>/pytest-N) is
    rotated by *other* concurrent pytest runs, which would delete live server data dirs."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="banhammer-tests-")
        config._banhammer_basetemp = config.option.basetemp


def pytest_sessionfinish(session, exitstatus):
    """Remove the private temp dir after a green run (kept after failures, for the logs)."""
    basetemp = getattr(session.config, "_banhammer_basetemp", None)
    if basetemp and exitstatus == 0:
        shutil.rmtree(basetemp, ignore_errors=True)
