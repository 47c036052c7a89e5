from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class SessionConfig:
    redis_url: str = env("REDIS_URL", doc="Redis the session service owns (sessions, bans, cache, notifications)")
