"""The gateway's authorizer: who may call which RPC, and how often.

Envoy asks the session service on every call (ext_authz), so a revoked session or a ban (which
revokes the subject's sessions) is refused on the very next call. Required access comes from the
contracts themselves: the ``banhammer.common.v1.access`` method option. The session lookup, ban
check, role check and per-caller rate limit are one Redis script (one round trip per request).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from google.protobuf import descriptor_pool

from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated

from . import tokens
from .clock import Clock
from .rate_limit import check_rule
from .sessions import INVALID_TOKEN, check_token
from .store.gateway import INVALID_SESSION, NO_SUCH_PATH, OVER_LIMIT, ROLE_TOO_LOW, GatewayStore
from .validation import Violations

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


@dataclass(frozen=True)
class Admission:
    """An admitted call (``caller`` None on a public path), or one over its caller's rate limit."""

    caller: Caller | None
    retry_after_ms: int = 0  # > 0: refused by the rate limit, retry after this long


PUBLIC = Admission(None)


class GatewayAuth:
    def __init__(self, store: GatewayStore, clock: Clock, role_limits: dict[str, RoleLimit],
                 policy: dict[str, int] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.role_limits = role_limits
        self.policy = load_access_policy() if policy is None else policy
        # A limit RateLimits.consume would reject fails each call it applies to, as it did when
        # the gateway called consume; the others go to the script as "<role> <rank> <limit> <window>".
        self._bad_limits: dict[str, Violations] = {}
        rules = []
        for role, rank in ROLE_RANK.items():
            rule = role_limits.get(role)
            limit, window = (rule.limit, rule.window_ms) if rule else (0, 0)
            if rule:
                v = Violations()
                check_rule(v, rule.limit, rule.window_ms, min(1, rule.limit))
                if v.items:
                    self._bad_limits[role] = v
                    limit, window = 0, 0
            rules.append(f"{role} {rank} {limit} {window}")
        self._rules = " ".join(rules)

    def required(self, path: str) -> int | None:
        """Access needed for ``path``; 0 for public paths; None for paths no service serves."""
        if path.startswith(PUBLIC_PREFIXES):
            return 0
        if path.startswith(ADMIN_PREFIXES):
            return ACCESS_ADMIN
        return self.policy.get(path.split("?", 1)[0])

    async def admit(self, path: str, authorization: str) -> Admission:
        """May this request through, and who is calling (one Redis round trip for non-public paths).

        Raises Unauthenticated (no, bad, revoked or expired credentials, or a banned subject),
        NotFound (a path the contracts do not declare: nothing else is reachable) or
        PermissionDenied (role too low). A caller over its role's limit is admitted with
        ``retry_after_ms`` > 0 and nothing consumed.
        """
        needed = self.required(path)
        if needed == 0:
            return PUBLIC
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing credentials: send 'authorization: Bearer <session token>'")
        check_token(token)
        out = await self.store.admit(tokens.token_hash(token), self.clock.now_ms(), needed or 0, self._rules)
        if out.code == INVALID_SESSION:
            raise Unauthenticated(INVALID_TOKEN)
        if out.code == NO_SUCH_PATH:
            raise NotFound(f"no such RPC: {path}")
        if out.code == ROLE_TOO_LOW:
            raise PermissionDenied(f"{path} needs the {ACCESS_NAMES[needed]} role")
        bad = self._bad_limits.get(out.role)
        if bad is not None:
            bad.raise_if_any()
        caller = Caller(out.subject, out.role, out.session_id)
        return Admission(caller, out.retry_after_ms if out.code == OVER_LIMIT else 0)
