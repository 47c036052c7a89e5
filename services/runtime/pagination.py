"""Opaque page tokens and page sizes (AIP-158), one codec for every List method.

A token is URL-safe base64 of JSON ``{"f": <digest of kind and filters>, "c": <cursor>}``. ``kind``
names the list (e.g. ``"energy.ListUsers"``), so a token from one list, or from the same list with
other filters, is INVALID_ARGUMENT, as is anything that does not decode. The cursor is a dict of
key values, never SQL; the digest is not a signature, so a caller can forge a cursor, and every value
is re-read with ``integer``/``text`` (or checked by its reader) so a forged one can only move the
reader within what its own filters allow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .errors import InvalidArgument

T = TypeVar("T")

MAX_TOKEN_BYTES = 1024
FIELD = "page_token"
FOREIGN = "not a page token issued by this method"


def _digest(kind: str, filters: Any) -> str:
    canonical = json.dumps([kind, filters], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode(kind: str, filters: Any, cursor: dict[str, Any]) -> str:
    """The token that resumes the list ``kind`` with ``filters`` after ``cursor``."""
    body = json.dumps({"f": _digest(kind, filters), "c": cursor}, separators=(",", ":"), ensure_ascii=False)
    token = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    if len(token) > MAX_TOKEN_BYTES:  # only reachable with keys far beyond the request limits
        raise ValueError(f"page token of {len(token)} bytes exceeds {MAX_TOKEN_BYTES}")
    return token


def decode(token: str, kind: str, filters: Any, field: str = FIELD) -> dict[str, Any] | None:
    """The cursor of ``token`` (``None`` for an empty token, i.e. the first page)."""
    if not token:
        return None
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise InvalidArgument.field(field, f"longer than {MAX_TOKEN_BYTES} bytes")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        digest, cursor = body["f"], body["c"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise invalid(field) from None
    if not isinstance(cursor, dict):
        raise invalid(field)
    if digest != _digest(kind, filters):
        raise InvalidArgument.field(field, "was issued for a request with different filters")
    return cursor


def invalid(field: str = FIELD, reason: str = FOREIGN) -> InvalidArgument:
    """The error for a token whose cursor values do not check out."""
    return InvalidArgument.field(field, reason)


def integer(value: Any, lo: int = 0, hi: int = 2**63 - 1, field: str = FIELD) -> int:
    """A cursor integer within [lo, hi] (a forged one must not reach SQL as an overflow)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field)
    return value


def text(value: Any, field: str = FIELD) -> str:
    if not isinstance(value, str):
        raise invalid(field)
    return value


def page_size(value: int, default: int, maximum: int, field: str = "page_size") -> int:
    """The page size to use: 0 means ``default``; below 0 or above ``maximum`` is INVALID_ARGUMENT."""
    if value < 0 or value > maximum:
        raise InvalidArgument.field(field, f"must be between 0 and {maximum} (0 means {default})")
    return value or default


async def id_page(kind: str, filters: Any, token: str, size: int,
                  fetch: Callable[[int, int], Awaitable[Sequence[T]]], key: Callable[[T], int]) -> tuple[list[T], str]:
    """One page of a list ordered by an integer id: ``fetch(after_id, limit)`` returns rows after
    ``after_id`` in id order. Asks for one row more than the page to know whether another follows."""
    cursor = decode(token, kind, filters)
    rows = await fetch(integer(cursor.get("id")) if cursor else 0, size + 1)
    items = list(rows[:size])
    return items, encode(kind, filters, {"id": key(items[-1])}) if len(rows) > size else ""
