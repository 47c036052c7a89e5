"""The gateway's authorizer: who may call which RPC, and how often.

Envoy asks the session service on every call (ext_authz), so a revoked session or a ban (which
revokes the subject's sessions) is refused on the very next call. The policy comes from the
contracts themselves (services/runtime/access.py): the access each RPC needs and the roles that
hold each access. The session lookup, ban check, access check and per-caller rate limit are one
Redis script (one round trip per request).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.runtime import access
from services.runtime.access import AccessPolicy
from services.runtime.errors import NotFound, PermissionDenied, Unauthenticated

from . import tokens
from .clock import Clock
from .rate_limit import check_rule
from .sessions import INVALID_TOKEN, check_token
from .store.gateway import INVALID_SESSION, NO_SUCH_PATH, NOT_PERMITTED, OVER_LIMIT, GatewayStore
from .validation import Violations

#: Reachable without credentials: load balancers and probes check health through the gateway.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)
#: Infrastructure services that are not in our contracts but may be reached by admins (grpcurl).
ADMIN_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")


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
    """``["service=5000/1", "energy_user=20/1"]`` → per-role limits (calls per window seconds)."""
    roles = access.load().roles
    limits = {}
    for spec in specs:
        role, _, rate = spec.partition("=")
        count, _, seconds = rate.partition("/")
        if role not in roles or not count.isdigit():
            raise ValueError(f"bad gateway rate limit {spec!r}: expected role=calls/seconds, role one of "
                             f"{', '.join(roles)}")
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
                 policy: AccessPolicy | None = None) -> None:
        self.store = store
        self.clock = clock
        self.role_limits = role_limits
        self.policy = access.load() if policy is None else policy
        # A limit RateLimits.consume would reject fails each call it applies to, as it did when
        # the gateway called consume; the others go to the script as "<role> <access bits> <limit>
        # <window>". A role the contracts do not list is not sent: it holds no access.
        self._bad_limits: dict[str, Violations] = {}
        rules = []
        for role in self.policy.roles:
            rule = role_limits.get(role)
            limit, window = (rule.limit, rule.window_ms) if rule else (0, 0)
            if rule:
                v = Violations()
                check_rule(v, rule.limit, rule.window_ms, min(1, rule.limit))
                if v.items:
                    self._bad_limits[role] = v
                    limit, window = 0, 0
            rules.append(f"{role} {self.policy.mask(role)} {limit} {window}")
        self._rules = " ".join(rules)

    def required(self, path: str) -> int | None:
        """Access needed for ``path``; 0 for public paths; None for paths no service serves."""
        if path.startswith(PUBLIC_PREFIXES):
            return 0
        if path.startswith(ADMIN_PREFIXES):
            return access.ADMIN
        return self.policy.methods.get(path.split("?", 1)[0])

    async def admit(self, path: str, authorization: str) -> Admission:
        """May this request through, and who is calling (one Redis round trip for non-public paths).

        Raises Unauthenticated (no, bad, revoked or expired credentials, or a banned subject),
        NotFound (a path the contracts do not declare: nothing else is reachable) or
        PermissionDenied (the caller's role does not hold the access the RPC needs). A caller over
        its role's limit is admitted with ``retry_after_ms`` > 0 and nothing consumed.
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
        if out.code == NOT_PERMITTED:
            raise PermissionDenied(f"{path} needs {self.policy.describe(needed)}; role {out.role!r} does not hold it")
        bad = self._bad_limits.get(out.role)
        if bad is not None:
            bad.raise_if_any()
        caller = Caller(out.subject, out.role, out.session_id)
        return Admission(caller, out.retry_after_ms if out.code == OVER_LIMIT else 0)
