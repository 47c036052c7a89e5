"""Pool exhaustion: with every database connection busy, a call waits QUERY_ACQUIRE_TIMEOUT_MS and
then gets RESOURCE_EXHAUSTED with RetryInfo; the call holding the connection still completes with
the right answer, and the pool serves again once it is free.

The connection is held for real: the test locks a table the first call reads (as in
test_deadlines.py), so that call's statement waits in PostgreSQL with its connection checked out.
"""

from __future__ import annotations

import time

import grpc
import psycopg
import pytest
from banhammer.query.v1 import query_pb2 as pb
from tests.harness import retry_delay

from .test_deadlines import locked


def waiting_on_locks(db, superuser_dsn: str) -> int:
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND database ="
                            " (SELECT oid FROM pg_database WHERE datname = %s)", (db.name,)).fetchone()[0]


def test_pool_exhaustion_is_resource_exhausted_with_retry_advice(db, start_query, pg_server):
    running = start_query(db.reader_dsn, QUERY_POOL_SIZE="1", QUERY_ACQUIRE_TIMEOUT_MS="200",
                          QUERY_SNAPSHOT_FRESH_MS="0", QUERY_STATEMENT_TIMEOUT_MS="60000")
    player = db.dataset.players[0]
    expected = running.stub.GetPlayer(pb.GetPlayerRequest(player_id=player), timeout=30)
    with locked(db, "player_summary"):
        holding = running.stub.GetPlayer.future(pb.GetPlayerRequest(player_id=player), timeout=60)
        deadline = time.monotonic() + 30
        while waiting_on_locks(db, pg_server.dsn(db.name)) == 0:  # its one connection is now checked out
            assert time.monotonic() < deadline and not holding.done(), "the first call never blocked"
            time.sleep(0.05)
        for call in (lambda: running.stub.GetTopPlayers(pb.GetTopPlayersRequest(), timeout=10),
                     lambda: running.stub.GetPlayer(pb.GetPlayerRequest(player_id=player), timeout=10)):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
            assert retry_delay(err.value) > 0
        assert not holding.done()
    # Admitted before the exhaustion: completes, unharmed (the activity window moves with "now").
    for answer in (holding.result(), running.stub.GetPlayer(pb.GetPlayerRequest(player_id=player), timeout=30)):
        assert (answer.summary, list(answer.recent_violations)) == (expected.summary, list(expected.recent_violations))
