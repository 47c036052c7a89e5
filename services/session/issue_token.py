"""``python -m services.session issue-token --subject ops-alice --role admin [--ttl-hours 8]``.

Mints a session directly in Redis (no gateway involved): how an operator gets the first admin
token, and how game servers and internal callers get their "service" credentials. The token is
printed once and stored only as a hash.
"""

from __future__ import annotations

import argparse

from services.runtime import access

from .clock import SystemClock
from .config import SessionConfig
from .sessions import Sessions
from .store.client import connect
from .store.sessions import SessionStore


async def issue_token(conf: SessionConfig, args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.session issue-token")
    parser.add_argument("--subject", required=True, help="who the token speaks for, e.g. game-server-eu-1")
    parser.add_argument("--role", required=True, choices=access.load().roles,
                        help="what the token may call: see the roles table in the README")
    parser.add_argument("--ttl-hours", type=float, default=None, help="lifetime (default: the service default)")
    opts = parser.parse_args(args)
    redis = connect(conf.redis_url, max_connections=2, timeout=conf.redis_timeout_seconds)
    try:
        sessions = Sessions(SessionStore(redis), SystemClock(), conf.session_default_ttl_seconds * 1000,
                            conf.session_max_lifetime_seconds * 1000)
        ttl_ms = int(opts.ttl_hours * 3600_000) if opts.ttl_hours else None
        created = await sessions.create(opts.subject, opts.role, {"issued_by": "cli"}, ttl_ms)
    finally:
        await redis.aclose()
    print(created.token)
    return 0
