"""Handles on the throwaway stores: connection strings, fresh databases, outages (stop/start).

Outage tests: ``with redis_server.down(): ...`` stops the server on its port and data dir and
starts it again (same port, same data) when the block exits.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from .paths import load_script
from .processes import ManagedProcess, free_port, wait_until

_counter = itertools.count(1)


class _Outage:
    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """Stop the server for the duration of the block; start it again afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()


class PostgresServer(_Outage):
    """The session's PostgreSQL (pytest-postgresql executor, trust auth on 127.0.0.1)."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.host, self.port, self.user = executor.host, executor.port, executor.user
        self.created: list[str] = []

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{dbname}"

    def execute(self, statement: str | sql.Composable, dbname: str = "postgres", params=None) -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(statement, params)

    def ensure_role(self, role: str, *, read_only: bool = False) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            if read_only:
                conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(role)))

    def new_database(self, prefix: str = "test", owner: str | None = None) -> str:
        """CREATE a fresh, empty database; return its DSN (as ``owner``, default the superuser).

        Dropped at the end of the session. Use one per test module for isolation.
        """
        name = f"{prefix}_{next(_counter)}"
        if owner:
            self.ensure_role(owner)
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            stmt += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        self.execute(stmt)
        self.created.append(name)
        return self.dsn(name, owner)

    def grant_read_only(self, dbname: str, role: str, owner: str) -> str:
        """Make ``role`` a read-only reader of ``owner``'s tables in ``dbname``; return its DSN."""
        self.ensure_role(role, read_only=True)
        r, o = sql.Identifier(role), sql.Identifier(owner)
        for stmt in (
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), r),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(r),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(o, r),
        ):
            self.execute(stmt, dbname)
        return self.dsn(dbname, role)

    def drop_created(self) -> None:
        for name in self.created:
            self.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()

    @property
    def running(self) -> bool:
        return self.executor.running()

    def stop(self) -> None:
        self.executor.stop()

    def start(self) -> None:
        # Not executor.start(): mirakuru forks with preexec_fn=os.setsid, which runs Python in the
        # child and can crash it (SIGSEGV) while gRPC threads run in this process. pg_ctl -w
        # starts the server and waits for it; start_new_session detaches it the same way.
        subprocess.run(self.executor.command_parts, start_new_session=True, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=self.executor.envvars)
        self.executor.wait_for_postgres()


class RedisServer(_Outage):
    """The session's Redis (pytest-redis executor), with AOF on as in production."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.host, self.port = executor.host, executor.port
        self._configure()

    def command(self, *args: str) -> bytes:
        """One raw RESP command (no client library needed); returns the first reply bytes."""
        import socket

        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection((self.host, self.port), timeout=5) as s:
            s.sendall(payload.encode())
            return s.recv(65536)

    def _configure(self) -> None:
        # pytest-redis has no appendonly option; the session service relies on AOF (WAITAOF).
        reply = self.command("CONFIG", "SET", "appendonly", "yes")
        assert reply.startswith(b"+OK"), reply

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.executor.running()

    def stop(self) -> None:
        self.executor.stop()

    def start(self) -> None:
        self.executor.start()
        self._configure()


class InfluxServer(_Outage):
    """influxd 1.x with a generated config: free HTTP and RPC ports, data under ``root``."""

    def __init__(self, root: Path, database: str = "energy_data", binary: str = "influxd") -> None:
        self.root = root
        self.database = database
        self.binary = shutil.which(binary) or binary
        self.port, self.rpc_port = free_port(), free_port()
        conf = load_script("deploy/local/influx_conf.py", "banhammer_influx_conf")
        self.config = root / "influxdb.conf"
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(conf.influx_config(root, self.port, self.rpc_port))
        self.proc = ManagedProcess("influxd", [self.binary, "-config", str(self.config)], root / "influxd.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc.running

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return resp.status == 204
        except (urllib.error.URLError, OSError):
            return False

    def query(self, q: str, db: str | None = None) -> dict:
        import json

        params = {"q": q, **({"db": db} if db else {})}
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as resp:
            return json.loads(resp.read())

    def start(self) -> None:
        self.proc.start()
        wait_until(self._ping, 30, f"influxd /ping on {self.url}", self.proc)
        self.query(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        self.proc.stop()
