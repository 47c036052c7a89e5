"""The identity headers the gateway adds to every call it admits, and how services read them.

The gateway's authorizer (services/session/envoy_servicer.py) sets them from the caller's session
and strips the bearer token; on public paths it removes them, and the no-auth Envoy template
removes them too, so a client can never send them through the gateway. A direct call inside the
cluster carries none (network policy decides who may make one).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

SUBJECT = "x-banhammer-subject"  # the session's subject ("user:12", a game server's name)
ROLE = "x-banhammer-role"  # the session's role (banhammer.common.v1.Access lists what it holds)
SESSION = "x-banhammer-session"  # the session id, so a revocation can end the caller's streams
ALL = (SUBJECT, ROLE, SESSION)


@dataclass(frozen=True)
class GatewayIdentity:
    subject: str = ""
    role: str = ""
    session_id: str = ""


def identity(context: grpc.aio.ServicerContext) -> GatewayIdentity:
    """Who the gateway admitted this call as; all fields empty for a direct call."""
    found = {}
    for key, value in context.invocation_metadata() or ():
        if key in ALL:
            found[key] = value
    return GatewayIdentity(found.get(SUBJECT, ""), found.get(ROLE, ""), found.get(SESSION, ""))
