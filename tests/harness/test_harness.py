"""The harness itself: each store starts, answers, survives an outage on the same port and data."""

import socket
import urllib.request

import psycopg
import pytest


def redis_ping(url_host: str, port: int) -> bytes:
    with socket.create_connection((url_host, port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16)


def test_new_database_is_fresh_and_owned(pg_server, new_database):
    dsn = new_database("harness", owner="harness_owner")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user, count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (
            "harness_owner", 0)
        conn.execute("CREATE TABLE t (x int)")
    assert new_database("harness") != dsn


def test_read_only_role_cannot_write(pg_server, new_database):
    dsn = new_database("ro", owner="ro_owner")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    reader = pg_server.grant_read_only(dsn.rsplit("/", 1)[1], "ro_reader", "ro_owner")
    with psycopg.connect(reader, autocommit=True) as conn:
        assert conn.execute("SELECT x FROM t").fetchone() == (1,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO t VALUES (2)")


def test_postgres_outage_keeps_data(pg_server, new_database):
    dsn = new_database("outage")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
    with pg_server.down():
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_redis_outage_same_port(redis_server):
    assert redis_ping(redis_server.host, redis_server.port).startswith(b"+PONG")
    with redis_server.down():
        with pytest.raises(OSError):
            redis_ping(redis_server.host, redis_server.port)
    assert redis_ping(redis_server.host, redis_server.port).startswith(b"+PONG")


def test_influx_database_and_outage(influx_server):
    names = influx_server.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
    assert [influx_server.database] in names
    with influx_server.down():
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{influx_server.url}/ping", timeout=2)
    assert urllib.request.urlopen(f"{influx_server.url}/ping", timeout=2).status == 204


@pytest.mark.docker
def test_timescaledb_container(timescaledb_container):
    with psycopg.connect(timescaledb_container) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_missing_tool_fails_under_ci_and_skips_elsewhere(tmp_path, ci, outcome):
    """tests/harness/require.py: what an end-to-end test does when Envoy, gen/ or Node is missing."""
    import os
    import subprocess
    import sys

    from tests.harness.paths import REPO

    (tmp_path / "test_needs_tool.py").write_text(
        "from tests.harness.require import missing\n\n"
        "def test_needs_tool():\n    missing('the tool is not installed')\n")
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                           str(tmp_path / "test_needs_tool.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert f"1 {outcome}" in done.stdout, done.stdout + done.stderr
    assert "the tool is not installed" in done.stdout
