"""The gateway's mTLS listener: the plain listener's routes and filters, with the caller's identity
taken from its client certificate instead of a session.

Envoy verifies the certificate against the CA and requires a SPIFFE URI SAN under
``spiffe://banhammer/``; the call then carries that URI as ``x-banhammer-subject`` and role
``service`` (never more: a certificate cannot claim admin), set by Envoy over anything the client
sent (an early header mutation, before any filter). No ext_authz call, and no per-request policy
filter either: the listener's route table is the policy. It holds an exact route for each RPC the contracts grant ``service`` (its action taken
from the plain table), the health routes, and a last route refusing everything else
(PERMISSION_DENIED), so deciding costs what routing costs anyway. A local rate limit meters each
identity. Revoking a game server = not renewing its short-lived certificate (deploy/k8s/README.md).

Why not Envoy's RBAC filter: measured with callgrind (instructions, not time, so other work on the
machine does not blur it), an RBAC filter over the ~40 permitted paths cost ~25k instructions per
call, about ten times what TLS itself costs Envoy per call (~2.4k); see README, Game-server
integration.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from services.runtime import gateway_headers

SPIFFE_PREFIX = "spiffe://banhammer/"
ROLE = "service"
EXT_AUTHZ = "envoy.filters.http.ext_authz"


@dataclass(frozen=True)
class MtlsFiles:
    """PEM paths as Envoy sees them."""

    ca: str
    cert: str
    key: str


def service_methods() -> list[str]:
    """Every RPC path the role ``service`` may call, from the contracts' access options."""
    from services.runtime import access

    policy = access.load()
    return sorted(path for path, needed in policy.methods.items() if policy.allows(ROLE, needed))


def tls_transport(files: MtlsFiles) -> dict:
    """Envoy's TLS for the listener: the gateway's certificate, a client certificate required."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": files.cert},
                                      "private_key": {"filename": files.key}}],
                "validation_context": {
                    "trusted_ca": {"filename": files.ca},
                    "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"prefix": SPIFFE_PREFIX}}],
                },
            },
        },
    }


def _identity() -> list[dict]:
    """The caller's identity headers, set over anything the client sent before any filter or route
    sees the request (so the rate limit keys on the certificate's identity). An early header
    mutation of the connection manager, not an HTTP filter: measured, a header_mutation filter
    cost ~9k instructions per call for the same four edits."""
    def put(key: str, value: str) -> dict:
        return {"append": {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}
    return [{
        "name": "envoy.http.early_header_mutation.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
            "mutations": [{"remove": gateway_headers.SESSION}, {"remove": "authorization"},
                          put(gateway_headers.SUBJECT, "%DOWNSTREAM_PEER_URI_SAN%"), put(gateway_headers.ROLE, ROLE)],
        },
    }]


def _matches(route: dict, path: str) -> bool:
    """Would ``route`` take a gRPC call to ``path`` (no routing header)? Our template's matchers only."""
    match = route["match"]
    if match.get("headers") or "route" not in route:
        return False
    return match.get("path") == path or ("prefix" in match and path.startswith(match["prefix"]))


def _permitted_routes(routes: list[dict]) -> list[dict]:
    """The plain table cut down to what role ``service`` may reach: health (public, as on the plain
    listener), the JSON guard, one exact route per permitted RPC with the action the plain table
    gives it, and a refusal for anything else."""
    kept = [r for r in routes if r["name"].startswith("health-") or r["name"] == "not-an-rpc"]
    permitted = []
    for path in service_methods():
        action = next((r for r in routes if _matches(r, path)), None)
        if action is None:
            raise ValueError(f"{path}: no route in the plain listener")
        permitted.append({"name": f"service:{path}", "match": {"path": path}, "route": copy.deepcopy(action["route"])})
    refuse = {"name": "not-permitted", "match": {"prefix": "/"},
              "direct_response": {"status": 403, "body": {"inline_string": (
                  f"a client certificate is role {ROLE}, which may not call this")}}}
    return [*kept, *permitted, refuse]


def _caller_limit(calls: int, seconds: int) -> dict:
    bucket = {"max_tokens": calls, "tokens_per_fill": calls, "fill_interval": f"{seconds}s"}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "mtls_caller",
            # The filter's own bucket is only a ceiling; the per-identity descriptor below decides.
            "token_bucket": {"max_tokens": 1_000_000_000, "tokens_per_fill": 1_000_000_000, "fill_interval": "1s"},
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "rate_limited_as_resource_exhausted": True,
            "rate_limits": [{"actions": [{"request_headers": {"header_name": gateway_headers.SUBJECT,
                                                              "descriptor_key": "caller"}}]}],
            # An empty value: one bucket per distinct identity.
            "descriptors": [{"entries": [{"key": "caller", "value": ""}], "token_bucket": bucket}],
            "max_dynamic_descriptors": 100_000,
        },
    }


def _without_ext_authz(routes: list[dict]) -> None:
    for route in routes:
        per_filter = route.get("typed_per_filter_config") or {}
        per_filter.pop(EXT_AUTHZ, None)
        if not per_filter:
            route.pop("typed_per_filter_config", None)


def mtls_listener(plain: dict, *, host: str, port: int, files: MtlsFiles, caller_limit: tuple[int, int]) -> dict:
    """The mTLS listener derived from the rendered plain ``gateway`` listener (same routes)."""
    listener = copy.deepcopy(plain)
    listener["name"] = "gateway_mtls"
    listener["address"] = {"socket_address": {"address": host, "port_value": port}}
    chain = listener["filter_chains"][0]
    chain["transport_socket"] = tls_transport(files)
    hcm = chain["filters"][0]["typed_config"]
    hcm["stat_prefix"] = "gateway_mtls"
    vhost = hcm["route_config"]["virtual_hosts"][0]
    vhost["routes"] = _permitted_routes(vhost["routes"])
    _without_ext_authz(vhost["routes"])
    vhost.pop("request_headers_to_remove", None)  # the identity mutation sets them
    hcm["early_header_mutation_extensions"] = _identity()
    filters = [f for f in hcm["http_filters"] if f["name"] != EXT_AUTHZ]
    router = filters.pop()
    hcm["http_filters"] = [*filters, _caller_limit(*caller_limit), router]
    return listener
