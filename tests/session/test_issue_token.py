"""The operator's bootstrap: a token minted by the CLI works at the service (and is only hashed)."""

import os
import subprocess
import sys
from pathlib import Path

from banhammer.session.v1 import session_pb2

ROOT = Path(__file__).resolve().parents[2]


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "services.session", "issue-token", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_issue_token_mints_a_working_session(session_redis_url, sessions, r):
    done = _cli(session_redis_url, "--subject", "cli-ops", "--role", "admin", "--ttl-hours", "1")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    claims = (await sessions.ValidateSession(session_pb2.ValidateSessionRequest(token=token))).session
    assert (claims.subject, claims.role) == ("cli-ops", "admin")
    async for key in r.scan_iter():
        assert token.encode() not in key


def test_issue_token_rejects_unknown_roles(session_redis_url):
    done = _cli(session_redis_url, "--subject", "x", "--role", "root")
    assert done.returncode == 2 and "invalid choice" in done.stderr
