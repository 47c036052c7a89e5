"""Envoy retries a read only when the service could not take it (connection refused, UNAVAILABLE),
never a status the service chose: a client error must not become repeated work.

The gateway logs each call's upstream attempts (``attempts`` in its JSON access log)."""

import json

import grpc
import pytest

from banhammer.query.v1 import query_pb2, query_pb2_grpc
from tests.e2e.test_gateway import access_log_entry, http_call
from tests.harness import auth_metadata, free_port
from tests.harness.paths import TARGETS

QUERY = "/banhammer.query.v1.QueryService"


def logged_status(code: grpc.StatusCode) -> str:
    """How Envoy's %GRPC_STATUS% spells a status (INVALID_ARGUMENT -> InvalidArgument)."""
    return "".join(word.title() for word in code.name.split("_"))


def grpc_call(addr: str, token: str, method: str, request) -> tuple[grpc.StatusCode, str]:
    """One call through the gateway; returns its status and the request id the gateway logs."""
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        try:
            _, call = getattr(stub, method).with_call(request, timeout=10, metadata=auth_metadata(token))
        except grpc.RpcError as exc:
            call = exc
    # An error without a body is a trailers-only answer: its headers arrive as trailing metadata.
    metadata = dict((*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())))
    return call.code(), metadata["x-request-id"]


@pytest.mark.parametrize(("method", "request_message", "expected"), [
    ("GetTopPlayers", query_pb2.GetTopPlayersRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetPlayer", query_pb2.GetPlayerRequest(player_id="e2e-never-seen"), grpc.StatusCode.NOT_FOUND),
    ("ListViolations", query_pb2.ListViolationsRequest(page_token="forged"), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_grpc_query_error_is_answered_once(gateway, gateway_tokens, method, request_message, expected):
    code, request_id = grpc_call(gateway.addr, gateway_tokens["service"], method, request_message)
    assert code == expected
    entry = access_log_entry(gateway, f"{QUERY}/{method}", request_id=request_id)
    assert (entry["grpc_status"], entry["attempts"]) == (logged_status(expected), 1), entry


@pytest.mark.parametrize(("path", "body", "status", "grpc_status"), [
    ("/api/ts/stats/top-players?page_size=5000", None, 400, grpc.StatusCode.INVALID_ARGUMENT),
    ("/api/ts/players/e2e-never-seen", None, 404, grpc.StatusCode.NOT_FOUND),
    (f"{QUERY}/GetHourlyLoad", {"hours": 100000}, 400, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_json_query_error_is_answered_once(gateway, gateway_tokens, path, body, status, grpc_status):
    got, payload, request_id = http_call(gateway.url + path, body, gateway_tokens["service"])
    answer = json.loads(payload)
    assert got == status and answer["code"] == grpc_status.value[0], payload
    if grpc_status == grpc.StatusCode.INVALID_ARGUMENT:  # the field violations reach JSON callers too
        assert answer["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest", payload
    entry = access_log_entry(gateway, path, request_id=request_id)
    assert (entry["upstream_cluster"], entry["attempts"]) == ("query", 1), entry


def test_refused_connection_is_retried(suite, envoy_factory, gateway_tokens):
    """The control for the tests above: where retrying is intended (nothing listens on the query
    port, so no request ever reached a service), the same log field shows all three attempts."""
    upstreams = {t: suite.addr for t in TARGETS}
    upstreams["query"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    gw = envoy_factory(upstreams)
    code, request_id = grpc_call(gw.addr, gateway_tokens["service"], "GetStatsOverview",
                                 query_pb2.GetStatsOverviewRequest())
    assert code == grpc.StatusCode.UNAVAILABLE
    entry = access_log_entry(gw, f"{QUERY}/GetStatsOverview", request_id=request_id)
    assert entry["attempts"] == 3, entry
