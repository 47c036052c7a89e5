"""A query that outlives its deadline is cancelled inside PostgreSQL, not left running.

The slow query is made real without any test-only code path: the test holds an ACCESS EXCLUSIVE
lock on a table the RPC reads, so the service's statement blocks in PostgreSQL until its
statement_timeout (from the call's deadline, or the configured cap) cancels it. The lock is held
while pg_stat_activity is checked, so a statement that was not cancelled would still be there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from banhammer.query.v1 import query_pb2 as pb
from services.query.deadline import Deadline
from services.query.store import QueryStore, reads
from services.runtime.errors import DeadlineExceeded
from services.runtime.postgres import LazyPool

from .conftest import READER


@contextlib.contextmanager
def locked(db, table: str) -> Iterator[None]:
    with psycopg.connect(db.owner_dsn) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def reader_statements(db) -> list[tuple]:
    """The read-only role's statements still running or waiting in the test database."""
    return db.rows("SELECT pid, state, wait_event_type, query FROM pg_stat_activity"
                   " WHERE datname = %s AND usename = %s AND state <> 'idle'", (db.name, READER))


def wait_until_none_running(db, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while (running := reader_statements(db)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running, f"statements left running in PostgreSQL: {running}"


def test_client_deadline_cancels_the_statement_in_postgres(query, db):
    with locked(db, "player_summary"):
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            query.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=0.8)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 3
        wait_until_none_running(db)  # still holding the lock: only a cancel can have ended it
    assert query.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=10).total_players > 0


def test_configured_cap_cancels_without_a_client_deadline(db, start_query):
    capped = start_query(db.reader_dsn, QUERY_SNAPSHOT_FRESH_MS="0", QUERY_STATEMENT_TIMEOUT_MS="300").stub
    with locked(db, "violations_ts"):
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            capped.ListViolations(pb.ListViolationsRequest())  # no deadline at all
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "300 ms" in err.value.details()
        assert time.monotonic() - started < 3
        wait_until_none_running(db)
    assert len(capped.ListViolations(pb.ListViolationsRequest(), timeout=10).violations) == 100


async def test_statement_timeout_follows_the_remaining_deadline(db):
    pool = LazyPool(db.reader_dsn, max_size=2, statement_timeout_ms=60_000, read_only=True)
    store = QueryStore(pool, cap_ms=60_000, acquire_timeout_s=5)
    await pool.open()
    try:
        with locked(db, "player_summary"):
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                async with store.session(Deadline.after(0.4)) as s:
                    await reads.player_totals(s, db.dataset.now)
            elapsed = time.monotonic() - started
            assert 0.3 < elapsed < 2.0, elapsed  # the 0.4 s budget, not the 60 s cap
            wait_until_none_running(db)
        with pytest.raises(DeadlineExceeded):  # nothing left: refused before touching the database
            async with store.session(Deadline.after(0.001)):
                pass
        async with store.session(Deadline.after(5)) as s:  # the pooled connection is still good
            assert (await reads.player_totals(s, db.dataset.now))[0] > 0
    finally:
        await pool.close()
