"""The SDK's blocking facade, trace context and retry advice, against the real gateway where a
server is involved."""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.sdk.trace import TracerProvider

from banhammer.common.v1 import common_pb2
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from banhammer_client import Backoff, SyncClient
from banhammer_client.connection import Metadata
from banhammer_client.retry import status_retry_delay


def test_sync_client_checks_bans_and_streams_actions(suite, gateway, gateway_tokens):
    player = f"sync-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(suite.addr) as ch:
        ban_pb2_grpc.BanServiceStub(ch).Ban(ban_pb2.BanRequest(
            subject=player, reason="sync", permanent=True, admin_source=ban_pb2.AdminSource(admin="gm")), timeout=10)
    client = SyncClient.connect(gateway.addr, token=lambda: gateway_tokens["service"])
    try:
        assert client.is_banned(player) is True
        assert client.client.bans.cached(player) is True  # the next check never leaves the process
        assert client.check_bans([player, f"{player}-other"])[f"{player}-other"].banned is False
        for i in range(5):
            client.send_action(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i)))
        client.send_actions(common_pb2.PlayerAction(player_id=player, action_type="move", value=float(i))
                            for i in range(5, 10))
        report = client.flush(30)
        assert (report.accepted, report.unacknowledged) == (10, 0)
    finally:
        client.close()


def test_calls_carry_the_token_and_the_current_trace_context():
    provider = TracerProvider()
    md = Metadata(lambda: "tok-1")
    with provider.get_tracer("test").start_as_current_span("game-tick") as span:
        carried = dict(md())
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert carried["authorization"] == "Bearer tok-1"
    assert carried["traceparent"].split("-")[1] == trace_id
    assert "traceparent" not in dict(md())  # no span, no trace context


def test_retry_advice_from_the_server_wins_over_backoff():
    advice = any_pb2.Any()
    advice.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="busy", details=[advice])
    assert status_retry_delay(status) == 2.5
    assert status_retry_delay(status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED)) is None
    backoff = Backoff(initial=0.1, maximum=0.4)
    assert all(0 <= backoff.delay(n) <= 0.4 for n in range(10))
