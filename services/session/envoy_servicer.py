"""Envoy's side of the gateway: ext_authz ``Check`` and the rate limit service, over GatewayAuth.

Both are called by Envoy on every request; neither is routed through the gateway itself.
"""

from __future__ import annotations

import math

from google.rpc import code_pb2, status_pb2

from envoy_api import ext_authz_pb2 as authz
from envoy_api import ext_authz_pb2_grpc as authz_grpc
from envoy_api import ratelimit_pb2 as rls_pb2
from envoy_api import ratelimit_pb2_grpc as rls_pb2_grpc

from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated

from .gateway import GatewayAuth

SUBJECT_HEADER = "x-banhammer-subject"
ROLE_HEADER = "x-banhammer-role"
OVERWRITE = authz.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(key: str, value: str) -> authz.HeaderValueOption:
    return authz.HeaderValueOption(header=authz.HeaderValue(key=key, value=value), append_action=OVERWRITE)


def _denied(code: int, http: int, message: str) -> authz.CheckResponse:
    return authz.CheckResponse(
        status=status_pb2.Status(code=code, message=message),
        denied_response=authz.DeniedHttpResponse(
            status=authz.HttpStatus(code=http),
            headers=[_header("www-authenticate", "Bearer")] if http == 401 else [],
            body=message,
        ),
    )


class AuthorizationServicer(authz_grpc.AuthorizationServicer):
    def __init__(self, auth: GatewayAuth) -> None:
        self.auth = auth

    async def Check(self, request, context):
        http = request.attributes.request.http
        try:
            caller = await self.auth.authorize(http.path, http.headers.get("authorization", ""))
        except Unauthenticated as exc:
            return _denied(code_pb2.UNAUTHENTICATED, 401, exc.message)
        except PermissionDenied as exc:
            return _denied(code_pb2.PERMISSION_DENIED, 403, exc.message)
        except NotFound as exc:  # gRPC clients see UNIMPLEMENTED, as for a path no route serves
            return _denied(code_pb2.UNIMPLEMENTED, 404, exc.message)
        ok = authz.OkHttpResponse(headers_to_remove=["authorization"])
        if caller is None:  # public path: identity headers can only come from us, never the client
            ok.headers_to_remove.extend([SUBJECT_HEADER, ROLE_HEADER])
        else:
            ok.headers.extend([_header(SUBJECT_HEADER, caller.subject), _header(ROLE_HEADER, caller.role)])
        return authz.CheckResponse(status=status_pb2.Status(code=code_pb2.OK), ok_response=ok)


class GatewayRateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, auth: GatewayAuth) -> None:
        self.auth = auth

    async def ShouldRateLimit(self, request, context):
        entries = {e.key: e.value for d in request.descriptors for e in d.entries}
        decision = await self.auth.consume(entries.get("caller", ""), entries.get("role", ""), request.hits_addend)
        if decision is None:
            return rls_pb2.RateLimitResponse(overall_code=rls_pb2.RateLimitResponse.OK)
        code = rls_pb2.RateLimitResponse.OK if decision.allowed else rls_pb2.RateLimitResponse.OVER_LIMIT
        response = rls_pb2.RateLimitResponse(
            overall_code=code,
            statuses=[rls_pb2.RateLimitResponse.DescriptorStatus(code=code, limit_remaining=decision.remaining)],
        )
        if not decision.allowed:
            # HTTP callers read retry-after; gRPC clients honour grpc-retry-pushback-ms.
            response.response_headers_to_add.extend([
                rls_pb2.HeaderValue(key="retry-after", value=str(max(1, math.ceil(decision.retry_after_ms / 1000)))),
                rls_pb2.HeaderValue(key="grpc-retry-pushback-ms", value=str(decision.retry_after_ms)),
            ])
        return response
