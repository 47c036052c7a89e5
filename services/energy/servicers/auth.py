"""Who is calling, and whether their role holds the access an RPC needs (the contracts' table).

Behind the gateway the caller was already authenticated and authorized there: Envoy's ext_authz
(the session service) replaces the token with the identity headers (services/runtime/
gateway_headers.py), which clients cannot forge through the gateway; their role is used as is, and
checked against the same table as at the gateway (services/runtime/access.py), so "service" is
never an energy admin. A token sent directly is always validated and its role applies.

A direct call with neither (only reachable inside the cluster, see the network policies): with
ENERGY_REQUIRE_AUTH on it is anonymous; off (trusted network), it acts as an energy admin, which
reaches energy RPCs only: no login it creates can hold a BanHammer role. Identity headers on a
direct call are trusted like the gateway's: only the gateway may reach this service. Directly,
Authenticate and the sign-up of an ordinary user need no credentials (they are how one gets some);
through the gateway they take the login front end's "service" credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.runtime import PermissionDenied, Unauthenticated, access, gateway_headers

from ..session_client import SessionClient


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    role: str  # a session role ("energy_user", "energy_admin", "service", ...) or "" (anonymous)

    @property
    def is_admin(self) -> bool:
        """An energy admin (role energy_admin, or a BanHammer admin, which holds every access)."""
        return access.load().allows(self.role, access.ENERGY_ADMIN)


ANONYMOUS = Caller(0, "", "")
TRUSTED = Caller(0, "", "energy_admin")


def _user_id(subject: str) -> int:
    """Energy logins have subject "user:<id>"; any other caller is no energy user (0)."""
    return int(subject[5:]) if subject.startswith("user:") and subject[5:].isdigit() else 0


class Auth:
    def __init__(self, sessions: SessionClient, required: bool) -> None:
        self.sessions = sessions
        self.required = required

    async def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and value.lower().startswith("bearer "):
                token = value[7:].strip()
        admitted = gateway_headers.identity(context)
        if admitted.role and not token:  # authenticated by the gateway
            return Caller(_user_id(admitted.subject), admitted.subject, admitted.role)
        if not token:
            return ANONYMOUS if self.required else TRUSTED
        claims = await self.sessions.validate(token)
        if claims is None:
            raise Unauthenticated("invalid or expired session")
        return Caller(_user_id(claims.subject), claims.username, claims.role)

    async def require(self, context: grpc.aio.ServicerContext, needed: int) -> Caller:
        """The caller, if its role holds ``needed`` (an Access value); else the error the gateway gives."""
        caller = await self.caller(context)
        if not caller.role:
            raise Unauthenticated("a session token is required")
        policy = access.load()
        if not policy.allows(caller.role, needed):
            raise PermissionDenied(f"this call needs {policy.describe(needed)}")
        return caller

    async def user(self, context: grpc.aio.ServicerContext) -> Caller:
        """Energy readers: ACCESS_ENERGY_USER."""
        return await self.require(context, access.ENERGY_USER)

    async def admin(self, context: grpc.aio.ServicerContext) -> Caller:
        """Energy administration: ACCESS_ENERGY_ADMIN."""
        return await self.require(context, access.ENERGY_ADMIN)

    async def feed(self, context: grpc.aio.ServicerContext) -> Caller:
        """Readings and usage in: ACCESS_ENERGY_SERVICE (meters, IoT gateways, energy admins)."""
        return await self.require(context, access.ENERGY_SERVICE)
