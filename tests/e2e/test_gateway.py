"""Through a real Envoy in front of the in-process suite: health per service, clean statuses for
unknown paths, and transcoded JSON routes reaching the right upstream."""

import json
import time
import urllib.error
import urllib.request
import uuid

import grpc
import pytest

from tests.harness import auth_metadata, check_health, gateway_metadata
from tests.harness.paths import TARGETS, envoy_render

UPSTREAMS = {u.name: u for u in envoy_render().UPSTREAMS}


@pytest.mark.parametrize("target", TARGETS)
def test_health_of_each_service_through_envoy(gateway, target):
    assert check_health(gateway.addr, UPSTREAMS[target].grpc_service, metadata=gateway_metadata(target)) == "SERVING"
    assert check_health(gateway.addr, "", metadata=gateway_metadata(target)) == "SERVING"


def test_health_without_header_explains_itself(gateway):
    with grpc.insecure_channel(gateway.addr) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as err:
            check(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "x-banhammer-service" in err.value.details()


@pytest.mark.parametrize("path", ["/banhammer.nope.v1.NopeService/Nope", "/banhammer.query.v1.QueryService/Nope"])
def test_unknown_path_gets_clean_grpc_status(gateway, gateway_tokens, path):
    with grpc.insecure_channel(gateway.addr) as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(path)(b"", timeout=5, metadata=auth_metadata(gateway_tokens["admin"]))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def access_log_entry(gateway, path: str, timeout: float = 10.0, request_id: str | None = None) -> dict:
    """The gateway's JSON access-log line for ``path`` (and ``request_id`` when given); polled, as
    Envoy flushes its log periodically."""
    deadline = time.monotonic() + timeout
    while True:
        for line in gateway.log().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("path") == path and request_id in (None, entry.get("request_id")):
                return entry
        if time.monotonic() >= deadline:
            raise AssertionError(f"no access-log entry for {path} {request_id or ''}")
        time.sleep(0.2)


def http(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
    """One JSON call (GET without a body, else POST): status and body."""
    status, payload, _ = http_call(url, body, token)
    return status, payload


def http_call(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, bytes, str]:
    """One JSON call: status, body and the request id the gateway answered with (and logged)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers["x-request-id"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path", "cluster"), [
    ("POST", "/api/ts/action", "ingest"),
    ("POST", "/api/action", "ingest"),  # the seed's legacy alias
    ("GET", "/api/ts/stats/overview", "query"),
])
def test_transcoded_json_reaches_the_right_service(gateway, gateway_tokens, method, path, cluster):
    body = {"player_id": "test_player_1", "action_type": "reward_collection", "value": 100.0}
    status, payload = http(gateway.url + path, body if method == "POST" else None, gateway_tokens["service"])
    entry = access_log_entry(gateway, path)
    assert entry["upstream_cluster"] == cluster, entry
    assert (status, entry["grpc_status"]) == (200, "OK"), (status, payload)


# The five RPCs that have a REST path too: each is also served as JSON at its RPC path
# (POST /<package>.<Service>/<Method>, the request message as the body), like every other RPC.
JSON_PLAYER = f"e2e-json-{uuid.uuid4().hex[:8]}"
ACTION = {"player_id": JSON_PLAYER, "action_type": "json_binding", "value": 1.0}
REST_AND_RPC_PATH = {
    # RPC: (REST method, REST path, RPC-path body, a field every answer has)
    "banhammer.ingest.v1.IngestService/RecordAction": ("POST", "/api/ts/action", {"action": ACTION}, "time"),
    "banhammer.query.v1.QueryService/GetStatsOverview": ("GET", "/api/ts/stats/overview", {}, "last_day"),
    "banhammer.query.v1.QueryService/GetTopPlayers": (
        "GET", "/api/ts/stats/top-players?page_size=5", {"page_size": 5}, "window"),
    "banhammer.query.v1.QueryService/GetHourlyLoad": ("GET", "/api/ts/stats/hourly-load?hours=2", {"hours": 2}, "hours"),
    "banhammer.query.v1.QueryService/GetPlayer": (
        "GET", f"/api/ts/players/{JSON_PLAYER}", {"player_id": JSON_PLAYER}, "summary"),
}


@pytest.fixture(scope="module")
def json_player(gateway, gateway_tokens) -> str:
    """A player with one committed action, so GetPlayer answers 200 on both paths."""
    status, payload = http(gateway.url + "/api/ts/action", ACTION, gateway_tokens["service"])
    assert status == 200, payload
    return JSON_PLAYER


@pytest.mark.parametrize("rpc", sorted(REST_AND_RPC_PATH))
@pytest.mark.parametrize("via", ["rest-path", "rpc-path"])
def test_rest_annotated_rpcs_answer_json_on_both_paths(gateway, gateway_tokens, json_player, rpc, via):
    rest_method, rest_path, rpc_body, field = REST_AND_RPC_PATH[rpc]
    if via == "rest-path":
        path = rest_path
        body = ACTION if rest_method == "POST" else None
    else:
        path, body = f"/{rpc}", rpc_body
    status, payload, request_id = http_call(gateway.url + path, body, gateway_tokens["service"])
    assert status == 200, (status, payload)
    assert field in json.loads(payload), payload
    entry = access_log_entry(gateway, path, request_id=request_id)
    assert (entry["grpc_status"], entry["attempts"]) == ("OK", 1), entry
    if rpc.endswith("GetPlayer"):
        assert json.loads(payload)["summary"]["player_id"] == json_player


def test_json_for_no_rpc_is_404_without_reaching_a_service(gateway, gateway_tokens):
    """JSON that no binding transcodes (an unknown method, or GET where the RPC takes POST) gets a
    clean 404 from the gateway instead of a gRPC server's stream reset (503)."""
    for path, body in [("/banhammer.query.v1.QueryService/Nope", {}),
                       ("/banhammer.query.v1.QueryService/GetStatsOverview", None)]:
        status, payload = http(gateway.url + path, body, gateway_tokens["service"])
        assert status == 404 and b"no such RPC" in payload, (path, status, payload)
