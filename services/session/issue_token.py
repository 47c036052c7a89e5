"""``python -m services.session issue-token --subject ops-alice --role admin [--ttl-hours 8]``.

Mints a session directly in Redis (no gateway involved): how an operator gets the first admin
token, and how game servers and internal callers get their "service" credentials. The token is
printed once and stored only as a hash.
"""

from __future__ import annotations

import argparse

from services.runtime import Command, access
from services.runtime.cli import finite_float

from .clock import SystemClock
from .config import SessionConfig
from .sessions import Sessions
from .store.client import connect
from .store.sessions import SessionStore


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", required=True, help="who the token speaks for, e.g. game-server-eu-1")
    parser.add_argument("--role", required=True, choices=access.load().roles,
                        help="what the token may call: see the roles table in the README")
    parser.add_argument("--ttl-hours", type=finite_float, default=None,
                        help="lifetime, 1 minute..SESSION_MAX_LIFETIME_SECONDS (default: the service default)")


async def issue_token(conf: SessionConfig, opts: argparse.Namespace) -> int:
    redis = connect(conf.redis_url, max_connections=2, timeout=conf.redis_timeout_seconds)
    try:
        sessions = Sessions(SessionStore(redis), SystemClock(), conf.session_default_ttl_seconds * 1000,
                            conf.session_max_lifetime_seconds * 1000)
        ttl_ms = None if opts.ttl_hours is None else int(opts.ttl_hours * 3600_000)
        created = await sessions.create(opts.subject, opts.role, {"issued_by": "cli"}, ttl_ms)
    finally:
        await redis.aclose()
    print(created.token)
    return 0


COMMAND = Command(issue_token, "mint a session token directly in Redis (the first admin, game servers)", arguments)
