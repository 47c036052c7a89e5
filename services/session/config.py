"""Typed configuration of the session service (environment variables, parsed in ``main()``)."""

from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class SessionConfig:
    redis_url: str = env("REDIS_URL", doc="Redis the session service owns (sessions, bans, cache, notifications)")
    redis_max_connections: int = env("REDIS_MAX_CONNECTIONS", 64, doc="Pooled Redis connections for unary calls")
    redis_timeout_seconds: float = env("REDIS_TIMEOUT_SECONDS", 2.0,
                                       doc="Connect and per-command timeout: Redis down fails fast (UNAVAILABLE)")
    redis_waitaof: bool = env("REDIS_WAITAOF", True,
                              doc="After a ban/unban, WAITAOF until the AOF is fsynced (Redis >= 7.2 with AOF on)")
    session_default_ttl_seconds: int = env("SESSION_DEFAULT_TTL_SECONDS", 8 * 3600,
                                           doc="Session lifetime when CreateSession gives none")
    session_max_lifetime_seconds: int = env("SESSION_MAX_LIFETIME_SECONDS", 30 * 86400,
                                            doc="Hard limit: a session never lives past create time + this")
    sweep_interval_seconds: float = env("SWEEP_INTERVAL_SECONDS", 30.0,
                                        doc="How often expired sessions and bans are deleted (expiry is enforced on read)")
    ban_history_days: int = env("BAN_HISTORY_DAYS", 365, doc="How long ban/unban events are kept")
    notify_retention_seconds: int = env("NOTIFY_RETENTION_SECONDS", 24 * 3600,
                                        doc="Notifications older than this are trimmed (replay bound)")
    notify_max_len: int = env("NOTIFY_MAX_LEN", 10_000, doc="At most this many notifications kept per channel (approx.)")
    notify_max_subscribers: int = env("NOTIFY_MAX_SUBSCRIBERS", 500,
                                      doc="Concurrent Subscribe streams (one blocking Redis connection each)")
    gateway_rate_limits: list[str] = env("GATEWAY_RATE_LIMITS", ["service=5000/1", "admin=100/1", "energy_user=20/1",
                                                                 "energy_admin=100/1", "user=20/1"],
                                         doc="Per-caller limits at the gateway, role=calls/seconds (comma-separated)")
