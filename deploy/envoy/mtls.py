"""The gateway's mTLS listener: the plain listener's routes and filters, with the caller's identity
taken from its client certificate instead of a session.

Envoy verifies the certificate against the CA and requires a SPIFFE URI SAN under
``spiffe://banhammer/``; the call then carries that URI as ``x-banhammer-subject`` and role
``service`` (never more: a certificate cannot claim admin), set by Envoy over anything the client
sent. No ext_authz call: an RBAC filter admits exactly the RPCs the contracts grant ``service``
(everything else is PERMISSION_DENIED), and a local rate limit meters each identity. Revoking a
game server = not renewing its short-lived certificate (deploy/k8s/README.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

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


def _tls(files: MtlsFiles) -> dict:
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


def _identity() -> dict:
    def put(key: str, value: str) -> dict:
        return {"append": {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"request_mutations": [
                {"remove": "x-banhammer-session"}, {"remove": "authorization"},
                put("x-banhammer-subject", "%DOWNSTREAM_PEER_URI_SAN%"), put("x-banhammer-role", ROLE)]},
        },
    }


def _rbac() -> dict:
    paths = [{"url_path": {"path": {"exact": p}}} for p in service_methods()]
    health = {"url_path": {"path": {"prefix": "/grpc.health.v1.Health/"}}}
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"service-role": {
                "permissions": [{"or_rules": {"rules": [*paths, health]}}],
                "principals": [{"authenticated": {"principal_name": {"prefix": SPIFFE_PREFIX}}}],
            }}},
        },
    }


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
            "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-banhammer-subject",
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
    chain["transport_socket"] = _tls(files)
    hcm = chain["filters"][0]["typed_config"]
    hcm["stat_prefix"] = "gateway_mtls"
    vhost = hcm["route_config"]["virtual_hosts"][0]
    vhost.pop("request_headers_to_remove", None)  # the identity filter overwrites them
    _without_ext_authz(vhost["routes"])
    filters = [f for f in hcm["http_filters"] if f["name"] != EXT_AUTHZ]
    router = filters.pop()
    hcm["http_filters"] = [_identity(), *filters, _rbac(), _caller_limit(*caller_limit), router]
    return listener
