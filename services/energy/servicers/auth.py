"""Who is calling: a session bearer token validated by the session service.

Behind the gateway the caller was already authenticated there: Envoy's ext_authz (the session
service) replaces the token with ``x-banhammer-subject`` / ``x-banhammer-role``, which clients
cannot forge through the gateway; those are used as is (role "service" is a trusted internal caller).
With ENERGY_REQUIRE_AUTH off (trusted network), a caller without either is treated as an admin; a
token, when sent directly, is always validated and its role applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.runtime import PermissionDenied, Unauthenticated

from ..session_client import SessionClient


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    role: str  # "admin", "user" or "" (anonymous)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS = Caller(0, "", "")
TRUSTED = Caller(0, "", "admin")


class Auth:
    def __init__(self, sessions: SessionClient, required: bool) -> None:
        self.sessions = sessions
        self.required = required

    async def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        token, subject, role = "", "", ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and value.lower().startswith("bearer "):
                token = value[7:].strip()
            elif key == "x-banhammer-subject":
                subject = value
            elif key == "x-banhammer-role":
                role = value
        if role and not token:  # authenticated by the gateway
            user_id = int(subject[5:]) if subject.startswith("user:") and subject[5:].isdigit() else 0
            return Caller(user_id, subject, "admin" if role in ("admin", "service") else role)
        if not token:
            return ANONYMOUS if self.required else TRUSTED
        claims = await self.sessions.validate(token)
        if claims is None:
            raise Unauthenticated("invalid or expired session")
        user_id = int(claims.subject[5:]) if claims.subject.startswith("user:") and claims.subject[5:].isdigit() else 0
        return Caller(user_id, claims.username, claims.role)

    async def user(self, context: grpc.aio.ServicerContext) -> Caller:
        caller = await self.caller(context)
        if not caller.role:
            raise Unauthenticated("a session token is required")
        return caller

    async def admin(self, context: grpc.aio.ServicerContext) -> Caller:
        caller = await self.user(context)
        if not caller.is_admin:
            raise PermissionDenied("admin role required")
        return caller
