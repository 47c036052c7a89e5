"""The TimescaleDB init script really creates a read-only role (run against a throwaway PostgreSQL).

Plain PostgreSQL stands in for TimescaleDB here: the script uses only core SQL (roles, grants,
default privileges), which TimescaleDB's hypertables and chunks inherit.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from pytest_postgresql import factories

from tests.harness.require import missing

from .conftest import REPO

SCRIPT = REPO / "deploy/compose/timescaledb/initdb/10-query-readonly-role.sh"


@pytest.fixture(autouse=True)
def _psql_installed():
    if shutil.which("psql") is None:
        missing("psql (PostgreSQL client) not installed: apt-get install postgresql-client-15")


# PostgreSQL refuses to run as root; the harness's pg_ctl wrapper drops to the `postgres` user.
_PG_CTL = REPO / "tests/harness/bin/pg_ctl"
initdb_proc = factories.postgresql_proc(
    port=None, executable=str(_PG_CTL) if os.geteuid() == 0 and _PG_CTL.exists() else None)


def _psql(proc, sql: str, user: str, db: str, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGHOST": proc.host, "PGPORT": str(proc.port), "PGPASSWORD": "unused"}
    return subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-XAtq", "-U", user, "-d", db, "-c", sql],
                          env=env, capture_output=True, text=True, check=check)


def test_query_role_can_read_but_not_write(initdb_proc):
    owner, db = initdb_proc.user, "banhammer_ts"
    _psql(initdb_proc, f"CREATE DATABASE {db}", owner, "postgres")
    _psql(initdb_proc, "CREATE TABLE early (id int); INSERT INTO early VALUES (1)", owner, db)

    env = {**os.environ, "PGHOST": initdb_proc.host, "PGPORT": str(initdb_proc.port),
           "POSTGRES_USER": owner, "POSTGRES_DB": db, "QUERY_DB_PASSWORD": "s3cret-for-test"}
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr

    # A table created afterwards by the owner (as `ingest migrate` does) is readable too.
    _psql(initdb_proc, "CREATE TABLE player_actions (id int); INSERT INTO player_actions VALUES (7)", owner, db)

    assert _psql(initdb_proc, "SELECT id FROM player_actions", "banhammer_query", db).stdout.strip() == "7"
    assert _psql(initdb_proc, "SELECT id FROM early", "banhammer_query", db).stdout.strip() == "1"
    assert _psql(initdb_proc, "SHOW default_transaction_read_only", "banhammer_query", db).stdout.strip() == "on"
    denied = _psql(initdb_proc, "INSERT INTO player_actions VALUES (8)", "banhammer_query", db, check=False)
    assert denied.returncode != 0 and "read-only transaction" in denied.stderr
    # Even with the read-only default switched off, the role has no write privilege.
    denied = _psql(initdb_proc, "SET default_transaction_read_only = off; "
                                "BEGIN READ WRITE; INSERT INTO player_actions VALUES (9); COMMIT",
                   "banhammer_query", db, check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    denied = _psql(initdb_proc, "CREATE TABLE sneaky (id int)", "banhammer_query", db, check=False)
    assert denied.returncode != 0


def test_script_refuses_to_run_without_the_password():
    env = {k: v for k, v in os.environ.items() if k != "QUERY_DB_PASSWORD"}
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "QUERY_DB_PASSWORD" in run.stderr
