"""The operator's bootstrap: a token minted by the CLI works at the service (and is only hashed)."""

import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as redis

from services.session.clock import SystemClock
from services.session.sessions import Sessions
from services.session.store.sessions import SessionStore

ROOT = Path(__file__).resolve().parents[2]


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "services.session", "issue-token", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_issue_token_mints_a_working_session(session_redis_url, r):
    done = _cli(session_redis_url, "--subject", "cli-ops", "--role", "admin", "--ttl-hours", "1")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    # Validated on the wall clock, as the CLI minted it (the service fixture runs a manual clock).
    client = redis.from_url(session_redis_url)
    try:
        claims = await Sessions(SessionStore(client), SystemClock(), 3600_000, 86400_000).validate(token, sliding=False)
    finally:
        await client.aclose()
    assert (claims.subject, claims.role) == ("cli-ops", "admin")
    async for key in r.scan_iter():
        assert token.encode() not in key


def test_issue_token_rejects_unknown_roles(session_redis_url):
    done = _cli(session_redis_url, "--subject", "x", "--role", "root")
    assert done.returncode == 2 and "invalid choice" in done.stderr
