"""Envoy's side of the gateway: ext_authz ``Check`` over GatewayAuth, called on every request.

One call per request decides identity, role and the caller's rate limit, in one Redis round trip
(a separate rate limit service would cost a second hop into this process per request). Over the
limit, the local reply is HTTP 429 with ``retry-after``, and ``grpc-status: 8`` so gRPC callers see
RESOURCE_EXHAUSTED (Envoy would otherwise map 429 to UNAVAILABLE).
"""

from __future__ import annotations

import math

from google.rpc import code_pb2, status_pb2

from envoy_api import ext_authz_pb2 as authz
from envoy_api import ext_authz_pb2_grpc as authz_grpc

from services.runtime import gateway_headers
from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated

from . import metrics
from .gateway import GatewayAuth

OVERWRITE = authz.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(key: str, value: str) -> authz.HeaderValueOption:
    return authz.HeaderValueOption(header=authz.HeaderValue(key=key, value=value), append_action=OVERWRITE)


def _denied(code: int, http: int, message: str, headers: list[authz.HeaderValueOption] = ()) -> authz.CheckResponse:
    return authz.CheckResponse(
        status=status_pb2.Status(code=code, message=message),
        denied_response=authz.DeniedHttpResponse(status=authz.HttpStatus(code=http), headers=list(headers), body=message),
    )

#: Decision label by status (bounded: never the path or the subject).
_RESULTS = {code_pb2.OK: "allowed", code_pb2.UNAUTHENTICATED: "unauthenticated", code_pb2.PERMISSION_DENIED: "denied",
            code_pb2.RESOURCE_EXHAUSTED: "limited", code_pb2.UNIMPLEMENTED: "unknown_path"}


class AuthorizationServicer(authz_grpc.AuthorizationServicer):
    def __init__(self, auth: GatewayAuth) -> None:
        self.auth = auth

    async def Check(self, request, context):
        response = await self._decide(request)
        metrics.GATEWAY_DECISIONS.labels(_RESULTS.get(response.status.code, "other")).inc()
        return response

    async def _decide(self, request) -> authz.CheckResponse:
        http = request.attributes.request.http
        try:
            admitted = await self.auth.admit(http.path, http.headers.get("authorization", ""))
        except Unauthenticated as exc:
            return _denied(code_pb2.UNAUTHENTICATED, 401, exc.message, [_header("www-authenticate", "Bearer")])
        except PermissionDenied as exc:
            return _denied(code_pb2.PERMISSION_DENIED, 403, exc.message)
        except NotFound as exc:  # gRPC clients see UNIMPLEMENTED, as for a path no route serves
            return _denied(code_pb2.UNIMPLEMENTED, 404, exc.message)
        caller = admitted.caller
        if admitted.retry_after_ms:
            retry_ms = admitted.retry_after_ms
            return _denied(code_pb2.RESOURCE_EXHAUSTED, 429, f"rate limit of role {caller.role} exceeded", [
                _header("retry-after", str(max(1, math.ceil(retry_ms / 1000)))),
                _header("grpc-retry-pushback-ms", str(retry_ms)),
                _header("grpc-status", str(code_pb2.RESOURCE_EXHAUSTED)),
            ])
        ok = authz.OkHttpResponse(headers_to_remove=["authorization"])
        if caller is None:  # public path: identity headers can only come from us, never the client
            ok.headers_to_remove.extend(gateway_headers.ALL)
        else:
            ok.headers.extend([_header(gateway_headers.SUBJECT, caller.subject),
                               _header(gateway_headers.ROLE, caller.role),
                               _header(gateway_headers.SESSION, caller.session_id)])
        return authz.CheckResponse(status=status_pb2.Status(code=code_pb2.OK), ok_response=ok)
