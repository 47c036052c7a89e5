"""Opaque page tokens: a keyset cursor bound to the request's filters.

A token is URL-safe base64 of JSON ``{"f": <filters digest>, "c": <cursor>}``. Reusing it with
other filters (a different digest) is INVALID_ARGUMENT, as is anything that does not decode. The
cursor holds only key values, never SQL, and every value is re-validated by its reader; a forged
cursor can only move the reader's position within what its own filters allow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Any

from services.runtime.errors import InvalidArgument

from .clock import from_us

MAX_TOKEN_BYTES = 1024
FIELD = "page_token"


def _digest(kind: str, filters: Any) -> str:
    canonical = json.dumps([kind, filters], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode(kind: str, filters: Any, cursor: dict[str, Any]) -> str:
    body = json.dumps({"f": _digest(kind, filters), "c": cursor}, separators=(",", ":"), ensure_ascii=False)
    token = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    if len(token) > MAX_TOKEN_BYTES:  # only reachable with keys far beyond the request limits
        raise ValueError(f"page token of {len(token)} bytes exceeds {MAX_TOKEN_BYTES}")
    return token


def decode(token: str, kind: str, filters: Any) -> dict[str, Any] | None:
    """The cursor of ``token`` (``None`` for an empty token, i.e. the first page)."""
    if not token:
        return None
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise InvalidArgument.field(FIELD, f"longer than {MAX_TOKEN_BYTES} bytes")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        digest, cursor = body["f"], body["c"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidArgument.field(FIELD, "not a page token issued by this method") from None
    if not isinstance(cursor, dict):
        raise InvalidArgument.field(FIELD, "not a page token issued by this method")
    if digest != _digest(kind, filters):
        raise InvalidArgument.field(FIELD, "was issued for a request with different filters")
    return cursor


def bad(reason: str = "not a page token issued by this method") -> InvalidArgument:
    return InvalidArgument.field(FIELD, reason)


def integer(value: Any, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """A cursor integer within [lo, hi] (a forged one must not reach SQL as an overflow)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad()
    return value


def instant(value: Any) -> datetime:
    """A cursor time (microseconds since the epoch)."""
    try:
        return from_us(integer(value, -(2**62), 2**62))
    except OverflowError:
        raise bad() from None


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise bad()
    return value
