"""Render the one Envoy template for a deployment target.

    python deploy/envoy/render.py --target local|compose|k8s [--out FILE] [--otlp HOST:PORT]

Tests import ``render(target, **overrides)`` to point the gateway at throwaway upstreams::

    render("local", listen_port=18000, admin_port=19901,
           upstreams={"ingest": "127.0.0.1:41001", ...}, descriptor="/abs/banhammer.pb")

The committed renders (``deploy/envoy/rendered/compose.yaml`` and
``deploy/k8s/base/gateway/envoy.yaml``) are rewritten by ``--write-committed`` and checked
for staleness by ``tests/e2e/test_envoy_config.py``.
"""

from __future__ import annotations

import argparse
import functools
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from google.protobuf import descriptor_pb2

from deploy.envoy.mtls import MtlsFiles, mtls_listener
from services.runtime.cli import CommandParser, run

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = HERE / "envoy.tmpl.yaml"


@dataclass(frozen=True)
class Upstream:
    name: str  # cluster name, and the value of the x-banhammer-service header
    package: str  # proto package, routed by the gRPC path prefix "/<package>."
    services: tuple[str, ...]  # its gRPC services: transcoded; the first one is health-checked
    port: int  # default gRPC port (services/<name>/service.py SPEC.default_port)

    @property
    def grpc_service(self) -> str:
        """The service name whose health stands for the process (all share one status)."""
        return self.services[0]


def _svc(package: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{package}.{n}" for n in names)


# Kept in step with protos/ by tests/e2e/test_envoy_config.py (fails when a service is missing).
UPSTREAMS = (
    Upstream("ingest", "banhammer.ingest.v1", _svc("banhammer.ingest.v1", "IngestService", "RuleService"), 50051),
    Upstream("query", "banhammer.query.v1", _svc("banhammer.query.v1", "QueryService"), 50052),
    Upstream("session", "banhammer.session.v1", _svc(
        "banhammer.session.v1", "SessionService", "BanService", "CacheService", "NotificationService",
        "RateLimitService"), 50053),
    Upstream("energy", "banhammer.energy.v1", _svc(
        "banhammer.energy.v1", "BuildingService", "SensorService", "EnergyUsageService", "DashboardService",
        "ForecastService", "AlertService", "UserService"), 50054),
)

DESCRIPTOR = REPO / "build" / "banhammer.pb"  # from scripts/gen_protos.sh (make gen)
CONSOLE_PORT = 8090  # the web console's HTTP port (services/console/config.py CONSOLE_PORT)


@functools.cache
def contract_methods() -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    """Every banhammer RPC path (``/pkg.Service/Method``) → its descriptor, from the contracts."""
    if not DESCRIPTOR.exists():
        raise FileNotFoundError(f"{DESCRIPTOR} missing: run `make gen` (scripts/gen_protos.sh) first")
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return {f"/{f.package}.{svc.name}/{m.name}": m
            for f in files.file if f.package.startswith("banhammer.") for svc in f.service for m in svc.method}


def streaming_methods() -> list[str]:
    """RPCs with a streaming side: routed with no timeout, so streams are never cut."""
    return sorted(p for p, m in contract_methods().items() if m.client_streaming or m.server_streaming)


def read_methods() -> list[str]:
    """RPCs the contracts mark ``idempotency_level = NO_SIDE_EFFECTS``: retried on transient failures.
    (The query service is read-only as a whole and has one retried prefix route.)"""
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    return sorted(p for p, m in contract_methods().items()
                  if m.options.idempotency_level == no_side_effects and not p.startswith("/banhammer.query.v1."))


#: Per-target values. Hosts are "name:port"; the descriptor is the path Envoy reads at start.
TARGETS: dict[str, dict] = {
    "local": {
        "listen_host": "127.0.0.1",
        "admin_host": "127.0.0.1",
        "upstreams": {u.name: f"127.0.0.1:{u.port}" for u in UPSTREAMS},
        "console": f"127.0.0.1:{CONSOLE_PORT}",
        "descriptor": str(REPO / "build" / "banhammer.pb"),
        "otlp": None,
    },
    "compose": {
        "listen_host": "0.0.0.0",
        "admin_host": "127.0.0.1",
        "upstreams": {u.name: f"{u.name}:{u.port}" for u in UPSTREAMS},
        "console": f"console:{CONSOLE_PORT}",
        "descriptor": "/etc/envoy/banhammer.pb",
        "otlp": "otel-collector:4317",
        "mtls_dir": "/etc/envoy/tls",  # the gateway-tls volume (docker-compose.yml)
    },
    "k8s": {
        "listen_host": "0.0.0.0",
        "admin_host": "127.0.0.1",
        "upstreams": {u.name: f"{u.name}.banhammer.svc.cluster.local:{u.port}" for u in UPSTREAMS},
        "console": f"console.banhammer.svc.cluster.local:{CONSOLE_PORT}",
        "descriptor": "/etc/envoy/banhammer.pb",
        "otlp": "otel-collector.banhammer.svc.cluster.local:4317",
    },
}
DEFAULTS = {
    # Authentication at the edge; only the local stack may turn it off (GATEWAY_AUTH=off).
    "auth": True,
    "listen_port": 8000,
    "admin_port": 9901,
    "stats_port": 9902,
    "max_json_request_bytes": 4 * 1024 * 1024,
    "max_json_response_bytes": 16 * 1024 * 1024,
    # mTLS for game servers and services (deploy/envoy/mtls.py): a second listener, on when
    # mtls_dir names the directory (as Envoy sees it) holding ca.pem, gateway.pem, gateway-key.pem.
    "mtls_dir": None,
    "mtls_port": 8443,
    "mtls_caller_limit": "5000/1",  # calls/seconds per certificate identity (GATEWAY_RATE_LIMITS' service)
}
COMMITTED = {
    "compose": HERE / "rendered" / "compose.yaml",
    "k8s": REPO / "deploy" / "k8s" / "base" / "gateway" / "envoy.yaml",
}


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-trees out in full: no &anchors/*aliases in what Envoy reads."""

    def ignore_aliases(self, data) -> bool:
        return True


_IF = re.compile(r"^#@if (\w+)\s*$")
_ENDIF = re.compile(r"^#@endif\s*$")


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {addr!r}")
    return host, int(port)


def _conditionals(text: str, enabled: set[str]) -> str:
    out, skipping = [], None
    for line in text.splitlines(keepends=True):
        if m := _IF.match(line):
            skipping = None if m.group(1) in enabled else m.group(1)
        elif _ENDIF.match(line):
            skipping = None
        elif skipping is None and not line.lstrip().startswith("#"):
            out.append(line)  # comments are dropped: they may mention $-placeholders
    return "".join(out)


def _method_route(method: str, *, stream: bool) -> dict:
    pkg = method.strip("/").split("/")[0].rsplit(".", 1)[0]
    cluster = next(u.name for u in UPSTREAMS if u.package == pkg)
    route: dict = {"cluster": cluster}
    if stream:
        route["timeout"] = "0s"
        route["idle_timeout"] = "0s"
    else:
        route.update(timeout="10s", max_stream_duration={"grpc_timeout_header_max": "30s"})
    kind = "stream" if stream else "read"
    return {"name": f"{kind}:{method}", "match": {"path": method}, "route": route}


def _with_method_routes(config: dict) -> dict:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    at = next(i for i, r in enumerate(routes) if r.get("name") == "query")
    retry = routes[at]["route"]["retry_policy"]
    extra = [_method_route(m, stream=True) for m in streaming_methods()]
    for m in read_methods():
        r = _method_route(m, stream=False)
        r["route"]["retry_policy"] = retry
        extra.append(r)
    routes[at:at] = extra
    return config


def render_config(target: str, **overrides) -> dict:
    """The rendered configuration as a dict (what Envoy will load)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    values = {**DEFAULTS, **TARGETS[target]}
    upstreams = {**values["upstreams"], **(overrides.pop("upstreams", None) or {})}
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"unknown override(s): {', '.join(sorted(unknown))}")
    values.update(overrides)
    subst = {
        "LISTEN_HOST": values["listen_host"],
        "LISTEN_PORT": values["listen_port"],
        "ADMIN_HOST": values["admin_host"],
        "ADMIN_PORT": values["admin_port"],
        "STATS_PORT": values["stats_port"],
        "DESCRIPTOR": values["descriptor"],
        "TRANSCODED_SERVICES": "[" + ", ".join(s for u in UPSTREAMS for s in u.services) + "]",
        "MAX_JSON_REQUEST_BYTES": values["max_json_request_bytes"],
        "MAX_JSON_RESPONSE_BYTES": values["max_json_response_bytes"],
    }
    for u in UPSTREAMS:
        host, port = _split(upstreams[u.name])
        key = u.name.upper()
        subst.update({f"{key}_HOST": host, f"{key}_PORT": port, f"{key}_SERVICE": u.grpc_service})
    subst["CONSOLE_HOST"], subst["CONSOLE_PORT"] = _split(values["console"])
    enabled = {"auth"} if values["auth"] else {"noauth"}
    if values["otlp"]:
        enabled.add("tracing")
        subst["OTLP_HOST"], subst["OTLP_PORT"] = _split(values["otlp"])
    text = _conditionals(TEMPLATE.read_text(), enabled)
    text = string.Template(text).substitute(subst)
    config = _with_method_routes(yaml.safe_load(text))
    if values["mtls_dir"]:
        d = values["mtls_dir"].rstrip("/")
        calls, _, seconds = str(values["mtls_caller_limit"]).partition("/")
        if not (calls.isdigit() and seconds.isdigit() and int(calls) > 0 and int(seconds) > 0):
            raise ValueError(f"mtls_caller_limit: expected CALLS/SECONDS, got {values['mtls_caller_limit']!r}")
        listeners = config["static_resources"]["listeners"]
        listeners.append(mtls_listener(listeners[0], host=values["listen_host"], port=values["mtls_port"],
                                       files=MtlsFiles(f"{d}/ca.pem", f"{d}/gateway.pem", f"{d}/gateway-key.pem"),
                                       caller_limit=(int(calls), int(seconds))))
    return config


def render(target: str, **overrides) -> str:
    """Render the template for ``target`` (local, compose, k8s) as Envoy YAML.

    Overrides: auth (default True), mtls_dir / mtls_port / mtls_caller_limit (the mTLS listener), listen_host,
    listen_port, admin_host, admin_port, stats_port (Envoy's /stats/prometheus for scrapers), descriptor, otlp
    ("host:port" or None), console ("host:port" of the web console), max_json_request_bytes,
    max_json_response_bytes, upstreams ({name: "host:port"},
    merged over the target's defaults).
    """
    header = (
        f"# GENERATED by `python deploy/envoy/render.py --target {target}` from deploy/envoy/envoy.tmpl.yaml.\n"
        "# Do not edit: change the template (or render.py) and re-render with --write-committed.\n"
    )
    return header + yaml.dump(render_config(target, **overrides), Dumper=_Dumper, sort_keys=False, width=120)


def write_committed() -> list[Path]:
    written = []
    for target, path in COMMITTED.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(target))
        written.append(path)
    return written


def _upstream(text: str) -> tuple[str, str]:
    name, sep, addr = text.partition("=")
    if not sep or name not in {u.name for u in UPSTREAMS}:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT with NAME one of {', '.join(u.name for u in UPSTREAMS)}")
    return name, addr


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python deploy/envoy/render.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS))
    parser.add_argument("--out", help="file to write (default: stdout)")
    parser.add_argument("--listen-port", type=int)
    parser.add_argument("--admin-port", type=int)
    parser.add_argument("--descriptor", help="path of the descriptor set Envoy loads")
    parser.add_argument("--otlp", help="OTLP/gRPC collector host:port (enables tracing)")
    parser.add_argument("--mtls-dir", help="directory (as Envoy sees it) of ca.pem, gateway.pem, gateway-key.pem: "
                        "adds the mTLS listener")
    parser.add_argument("--mtls-port", type=int)
    parser.add_argument("--no-auth", action="store_true", help="development only: no authentication")
    parser.add_argument("--upstream", action="append", default=[], metavar="NAME=HOST:PORT", type=_upstream)
    parser.add_argument("--write-committed", action="store_true",
                        help="rewrite the committed compose and k8s renders")
    args = parser.parse_args(argv)
    if args.write_committed:
        for path in write_committed():
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    if not args.target:
        parser.error("--target is required (or --write-committed)")
    overrides: dict = {}
    for key in ("listen_port", "admin_port", "descriptor", "otlp", "mtls_dir", "mtls_port"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.no_auth:
        overrides["auth"] = False
    if args.upstream:
        overrides["upstreams"] = dict(args.upstream)
    try:
        text = render(args.target, **overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "python deploy/envoy/render.py"))
