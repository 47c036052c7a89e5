"""The local stack's stores: PostgreSQL, Redis and InfluxDB 1.x as plain processes.

PostgreSQL holds both databases (banhammer_ts for ingest/query, energy for energy); TimescaleDB
is not installed here, so the services run on plain PostgreSQL (they detect the extension).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from influx_conf import influx_config
from processes import Proc, Processes, StackError

OWNER_ROLE = "banhammer"  # owns banhammer_ts and energy; ingest and energy connect as it
READER_ROLE = "banhammer_query"  # read-only: the query service
INFLUX_DB = "energy_data"

# Idempotent: safe on every `up`.
PROVISION_SQL = f"""
SELECT 'CREATE ROLE {OWNER_ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}')\\gexec
SELECT 'CREATE ROLE {READER_ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}')\\gexec
ALTER ROLE {READER_ROLE} SET default_transaction_read_only = on;
SELECT 'CREATE DATABASE banhammer_ts OWNER {OWNER_ROLE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'banhammer_ts')\\gexec
SELECT 'CREATE DATABASE energy OWNER {OWNER_ROLE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'energy')\\gexec
\\c banhammer_ts
-- Distinct players as HyperLogLog sketches (Debian: postgresql-15-hll); a superuser must create it,
-- and ingest's migration 0006 uses it when present (exact sets otherwise).
SELECT 'CREATE EXTENSION IF NOT EXISTS hll' WHERE EXISTS (SELECT FROM pg_available_extensions WHERE name = 'hll')\\gexec
GRANT CONNECT ON DATABASE banhammer_ts TO {READER_ROLE};
GRANT USAGE ON SCHEMA public TO {READER_ROLE};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER_ROLE};
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public GRANT SELECT ON TABLES TO {READER_ROLE};
"""

def as_postgres_user() -> tuple[list[str], str | None]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then (argv prefix)."""
    if os.geteuid() != 0:
        return [], None
    user = os.environ.get("PG_RUN_AS", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise StackError(f"running as root, and PostgreSQL refuses root: create a user {user!r} "
                         "(apt-get install postgresql-15 does) or set PG_RUN_AS.") from None
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"], user


def hand_to(user: str, path: Path) -> None:
    """Make ``path`` owned by ``user`` and reachable by it (ancestors traversable)."""
    shutil.chown(path, user)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class Stores:
    def __init__(self, conf, state: Path, procs: Processes) -> None:
        self.conf = conf
        self.state = state
        self.procs = procs
        self.pg_bin = Path(conf.pg_bin)
        self.influx_db = INFLUX_DB

    def preflight(self) -> None:
        need = {
            str(self.pg_bin / "initdb"): "apt-get install postgresql-15 (or set LOCAL_PG_BIN)",
            str(self.pg_bin / "postgres"): "apt-get install postgresql-15 (or set LOCAL_PG_BIN)",
            str(self.pg_bin / "psql"): "apt-get install postgresql-client-15",
            "redis-server": "apt-get install redis-server",
            "influxd": "apt-get install influxdb (InfluxDB 1.x)",
        }
        for binary, how in need.items():
            if not shutil.which(binary):
                raise StackError(f"{binary} not found; install it: {how}")

    def pg_url(self, role: str, db: str) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.conf.pg_port}/{db}"

    def service_env(self) -> dict[str, str]:
        return {
            "TIMESCALEDB_URL": self.pg_url(OWNER_ROLE, "banhammer_ts"),
            "QUERY_DATABASE_URL": self.pg_url(READER_ROLE, "banhammer_ts"),
            "ENERGY_DATABASE_URL": self.pg_url(OWNER_ROLE, "energy"),
            "REDIS_URL": f"redis://127.0.0.1:{self.conf.redis_port}/0",
            "INFLUXDB_URL": f"http://127.0.0.1:{self.conf.influx_port}",
            "INFLUXDB_DATABASE": INFLUX_DB,
        }

    def up(self) -> None:
        self._postgres()
        self._redis()
        self._influx()

    # --- PostgreSQL -------------------------------------------------------------------------
    def _postgres(self) -> None:
        data = self.state / "pg"
        prefix, user = as_postgres_user()
        if self.procs.pid("postgres") is None:
            if not (data / "PG_VERSION").exists():
                data.mkdir(parents=True, exist_ok=True)
                if user:
                    hand_to(user, data)
                self._run([*prefix, str(self.pg_bin / "initdb"), "-D", str(data), "-U", "postgres",
                           "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"], "initdb")
            argv = [*prefix, str(self.pg_bin / "postgres"), "-D", str(data), "-p", str(self.conf.pg_port),
                    "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                    "-c", "max_connections=200"]
            self.procs.start(Proc("postgres", argv, marker=str(data), ports=[self.conf.pg_port]))
        self.procs.wait_ready("postgres", self._pg_ready, 30, f"pg_isready on port {self.conf.pg_port}")
        self._run([str(self.pg_bin / "psql"), "-h", "127.0.0.1", "-p", str(self.conf.pg_port), "-U", "postgres",
                   "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], "provisioning", stdin=PROVISION_SQL)

    def _pg_ready(self) -> bool:
        argv = [str(self.pg_bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.conf.pg_port), "-U", "postgres"]
        return subprocess.run(argv, check=False).returncode == 0

    def _run(self, argv: list[str], what: str, stdin: str | None = None) -> None:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            raise StackError(f"PostgreSQL {what} failed (its output is above)")

    # --- Redis ------------------------------------------------------------------------------
    def _redis(self) -> None:
        data = self.state / "redis"
        data.mkdir(parents=True, exist_ok=True)
        if self.procs.pid("redis") is None:
            argv = ["redis-server", "--port", str(self.conf.redis_port), "--bind", "127.0.0.1",
                    "--dir", str(data), "--appendonly", "yes", "--save", "", "--daemonize", "no",
                    "--protected-mode", "yes"]
            self.procs.start(Proc("redis", argv, marker="redis-server", ports=[self.conf.redis_port]))
        self.procs.wait_ready("redis", self._redis_ping, 20, f"PING on port {self.conf.redis_port}")

    def _redis_ping(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.conf.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    # --- InfluxDB ---------------------------------------------------------------------------
    def _influx(self) -> None:
        root = self.state / "influx"
        root.mkdir(parents=True, exist_ok=True)
        config = root / "influxdb.conf"
        config.write_text(influx_config(root, self.conf.influx_port, self.conf.influx_rpc_port))
        if self.procs.pid("influxdb") is None:
            argv = ["influxd", "-config", str(config)]
            self.procs.start(Proc("influxdb", argv, marker=str(config),
                                  ports=[self.conf.influx_port, self.conf.influx_rpc_port]))
        self.procs.wait_ready("influxdb", lambda: self.http_ok(self.conf.influx_port, "/ping"), 30,
                              f"GET http://127.0.0.1:{self.conf.influx_port}/ping")
        query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{INFLUX_DB}"'}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{self.conf.influx_port}/query", data=query, timeout=5).read()

    @staticmethod
    def http_ok(port: int, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError):
            return False
