"""Opaque keyset page tokens bound to the request's filters (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from services.runtime import InvalidArgument


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode(cursor: list, filters: Any) -> str:
    raw = json.dumps({"c": cursor, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, filters: Any, field: str = "page_token") -> list | None:
    """The cursor of ``token`` (None for an empty token); INVALID_ARGUMENT if foreign or malformed."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        cursor, fingerprint = body["c"], body["f"]
        if not isinstance(cursor, list):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument.field(field, "is not a token from a previous response") from None
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument.field(field, "was issued for different filters")
    return cursor
