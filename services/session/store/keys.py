"""Every Redis key name the session service uses, in one place (see ../KEYS.md).

Durable state (sessions, bans, ban history, notification streams) never carries a Redis TTL, so
no ``volatile-*`` eviction policy can pick it; expiry of sessions and bans is decided on read
from the stored expiry time (the service's clock) and expired entries are deleted by a sweep
driven by the ``*:expiry`` sorted sets. Only cache, lease, rate-limit and idempotency keys have
TTLs. The deployment must not use ``allkeys-*`` eviction on this Redis.
"""

from services.runtime import revocations

# Sessions -------------------------------------------------------------------------------
SESSION_EXPIRY = "session:expiry"  # ZSET session_id -> expire ms (sweep index)
SESSION_PREFIX = "session:id:"  # + session_id: HASH of claims (no token, only its hash)
TOKEN_PREFIX = "session:token:"  # + sha256 hex of the token: STRING -> session_id
SUBJECT_PREFIX = "session:subject:"  # + subject: ZSET (score 0) of "<create ms, 15 digits>:<session_id>"


def session(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def session_token(token_hash: str) -> str:
    return TOKEN_PREFIX + token_hash


def subject_sessions(subject: str) -> str:
    return SUBJECT_PREFIX + subject


# Bans -----------------------------------------------------------------------------------
BAN_INDEX = "ban:index"  # ZSET (score 0) of "<create ms>:<ban_id>:<subject>" for ListBans
BAN_EXPIRY = "ban:expiry"  # ZSET subject -> expire ms (timed bans only; sweep index)


def ban(subject: str) -> str:  # STRING JSON of the active ban
    return f"ban:active:{subject}"


def ban_history(subject: str) -> str:  # ZSET (score 0) of "<time ms>:<seq>:<event_id>:<event JSON>"
    return f"ban:history:{subject}"


def ban_idempotency(subject: str, key: str) -> str:  # STRING JSON response, 24 h TTL
    return f"ban:idem:{subject}:{key}"


# Cache (the only evictable data) ----------------------------------------------------------
def cache(namespace: str, key: str) -> str:
    return f"cache:{namespace}:{key}"


def cache_lease(namespace: str, key: str) -> str:
    return f"lease:{namespace}:{key}"


# Notifications and rate limits ----------------------------------------------------------
def notification(channel: str) -> str:  # STREAM
    return f"notification:{channel}"


# Every revocation (session, subject, ban, expiry) is appended here by the revoking script; the
# runtime of every service follows it to end the revoked callers' open streams.
REVOCATIONS_CHANNEL = revocations.CHANNEL
REVOCATIONS = notification(REVOCATIONS_CHANNEL)  # STREAM, capped by MAXLEN

# Every ban and unban is appended here by the script that makes it (BanService.WatchBans follows
# it for SDK caches). Written only by the session service; capped by MAXLEN ~ BAN_CHANGES_MAX_LEN.
BAN_CHANGES_CHANNEL = "session.bans"
BAN_CHANGES = notification(BAN_CHANGES_CHANNEL)  # STREAM: type, message (subject), attrs, ban (JSON)
BAN_CHANGES_MAX_LEN = 10_000
RESERVED_CHANNELS = (REVOCATIONS_CHANNEL, BAN_CHANGES_CHANNEL)


def rate_limit(key: str) -> str:  # HASH {debt, at}, TTL = time until fully replenished
    return f"ratelimit:{key}"
