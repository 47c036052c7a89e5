"""The gateway's authorizer: who may call which RPC, and how often.

Envoy asks the session service on every call (ext_authz, then the rate limit service), so a revoked
session or a ban (which revokes the subject's sessions) is refused on the very next call. Required
access comes from the contracts themselves: the ``banhammer.common.v1.access`` method option.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from google.protobuf import descriptor_pool

from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated

from .rate_limit import Decision, RateLimits
from .sessions import Sessions

ACCESS_AUTHENTICATED, ACCESS_SERVICE, ACCESS_ADMIN = 1, 2, 3
ROLE_RANK = {"user": ACCESS_AUTHENTICATED, "service": ACCESS_SERVICE, "admin": ACCESS_ADMIN}
ACCESS_NAMES = {ACCESS_AUTHENTICATED: "authenticated", ACCESS_SERVICE: "service", ACCESS_ADMIN: "admin"}

#: Reachable without credentials: load balancers and probes check health through the gateway.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)
#: Infrastructure services that are not in our contracts but may be reached by admins (grpcurl).
ADMIN_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")


def load_access_policy() -> dict[str, int]:
    """Every banhammer RPC path (``/pkg.Service/Method``) → the access it requires."""
    import banhammer
    from banhammer.common.v1 import access_pb2

    for module in pkgutil.walk_packages(banhammer.__path__, "banhammer."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)
    pool = descriptor_pool.Default()
    policy: dict[str, int] = {}
    for module in pkgutil.walk_packages(banhammer.__path__, "banhammer."):
        if not module.name.endswith("_pb2"):
            continue
        file = pool.FindFileByName(importlib.import_module(module.name).DESCRIPTOR.name)
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                access = options.Extensions[access_pb2.access] if options.HasExtension(access_pb2.access) else 0
                policy[f"/{service.full_name}/{method.name}"] = access or ACCESS_SERVICE
    return policy


@dataclass(frozen=True)
class Caller:
    subject: str
    role: str
    session_id: str


@dataclass(frozen=True)
class RoleLimit:
    limit: int
    window_ms: int


def parse_role_limits(specs: list[str]) -> dict[str, RoleLimit]:
    """``["service=5000/1", "user=20/1"]`` → per-role limits (calls per window seconds)."""
    limits = {}
    for spec in specs:
        role, _, rate = spec.partition("=")
        count, _, seconds = rate.partition("/")
        if role not in ROLE_RANK or not count.isdigit():
            raise ValueError(f"bad gateway rate limit {spec!r}: expected role=calls/seconds")
        limits[role] = RoleLimit(int(count), int(float(seconds or "1") * 1000))
    return limits


class GatewayAuth:
    def __init__(self, sessions: Sessions, limits: RateLimits, role_limits: dict[str, RoleLimit],
                 policy: dict[str, int] | None = None) -> None:
        self.sessions = sessions
        self.limits = limits
        self.role_limits = role_limits
        self.policy = load_access_policy() if policy is None else policy

    def required(self, path: str) -> int | None:
        """Access needed for ``path``; 0 for public paths; None for paths no service serves."""
        if path.startswith(PUBLIC_PREFIXES):
            return 0
        if path.startswith(ADMIN_PREFIXES):
            return ACCESS_ADMIN
        return self.policy.get(path.split("?", 1)[0])

    async def authorize(self, path: str, authorization: str) -> Caller | None:
        """The caller allowed to call ``path``, or None for a public path.

        Raises Unauthenticated (no or bad credentials), PermissionDenied (role too low) or NotFound
        (a path the contracts do not declare: nothing else is reachable).
        """
        needed = self.required(path)
        if needed == 0:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing credentials: send 'authorization: Bearer <session token>'")
        claims = await self.sessions.validate(token.strip(), sliding=False)
        if needed is None:
            raise NotFound(f"no such RPC: {path}")
        if ROLE_RANK.get(claims.role, 0) < needed:
            raise PermissionDenied(f"{path} needs the {ACCESS_NAMES[needed]} role")
        return Caller(claims.subject, claims.role, claims.session_id)

    async def consume(self, subject: str, role: str, hits: int) -> Decision | None:
        """Per-caller limit for the role; None when the role has no limit."""
        rule = self.role_limits.get(role)
        if rule is None or not subject:
            return None
        return await self.limits.consume(f"gateway:{subject}", rule.limit, rule.window_ms, min(max(hits, 1), rule.limit))
