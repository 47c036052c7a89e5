"""Bearer tokens and server-assigned ids.

A token is 256 random bits, base64url without padding (43 characters), returned once; Redis only
ever sees its SHA-256 hex digest, so a dump of Redis cannot be replayed as credentials.
"""

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id() -> str:
    """128 random bits, URL-safe (22 characters): session, ban and event ids."""
    return secrets.token_urlsafe(16)
