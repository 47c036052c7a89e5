"""The revocation feed survives a session service restart.

The ingest and session services run as separate runtimes, as deployed. A stream admitted by the
gateway (the identity headers ext_authz sets are sent here directly) is watched by the ingest
runtime; the session runtime is stopped and started again on the same port (Redis keeps the
session), and only then is the session revoked: the ingest runtime's follower must have
reconnected, resumed from its last seen id, and ended the stream.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.session.v1 import session_pb2, session_pb2_grpc
from services.runtime import gateway_headers
from tests.harness.processes import free_port
from tests.harness.suite import Suite


@pytest.fixture
def split(suite_env):
    session_port, ingest_port = free_port(), free_port()
    session_env = dict(suite_env, GRPC_PORT=str(session_port), SESSION_SERVICE_ADDR="")
    ingest_env = dict(suite_env, GRPC_PORT=str(ingest_port), SESSION_SERVICE_ADDR=f"127.0.0.1:{session_port}")
    running = {"session": Suite(session_env, targets=("session",)).start(),
               "ingest": Suite(ingest_env, targets=("ingest",)).start()}
    yield running, session_env
    for suite in running.values():
        suite.stop()


def test_a_revocation_after_the_session_service_restarted_still_ends_the_stream(split):
    running, session_env = split
    with grpc.insecure_channel(running["session"].addr) as ch:
        created = session_pb2_grpc.SessionServiceStub(ch).CreateSession(
            session_pb2.CreateSessionRequest(subject="feed-game-server", role="service"), timeout=10)
    done = threading.Event()

    def requests():
        yield ingest_pb2.StreamActionsRequest(sequence=1, actions=[
            common_pb2.PlayerAction(player_id="feed-p1", action_type="login", value=1.0)])
        done.wait(30)

    with grpc.insecure_channel(running["ingest"].addr) as ch:
        call = ingest_pb2_grpc.IngestServiceStub(ch).StreamActions(
            requests(), timeout=30,
            metadata=((gateway_headers.SESSION, created.session.session_id),
                      (gateway_headers.SUBJECT, "feed-game-server")))
        try:
            assert next(call).accepted_count == 1  # watched from here on

            running["session"].stop()  # the follower loses its feed ...
            running["session"] = Suite(session_env, targets=("session",)).start()  # ... and must find it again
            with grpc.insecure_channel(running["session"].addr) as session_channel:
                revoked = session_pb2_grpc.SessionServiceStub(session_channel).RevokeSession(
                    session_pb2.RevokeSessionRequest(session_id=created.session.session_id), timeout=10)
            assert revoked.revoked

            with pytest.raises(grpc.RpcError) as err:
                next(call)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            done.set()
