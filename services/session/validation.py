"""Request checks shared by the domain modules: collect every violation, then raise once."""

from __future__ import annotations

import base64
import json
import re

from services.runtime.errors import FieldViolation, InvalidArgument


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(self, field: str, value: str, lo: int, hi: int, pattern: re.Pattern | None = None,
             what: str = "") -> None:
        n = len(value.encode())
        if n < lo or n > hi:
            self.add(field, f"must be {lo}..{hi} bytes (got {n})")
        elif pattern is not None and not pattern.fullmatch(value):
            self.add(field, f"must match {what or pattern.pattern}")

    def attributes(self, field: str, attrs: dict[str, str], max_entries: int, max_value: int) -> None:
        if len(attrs) > max_entries:
            self.add(field, f"at most {max_entries} entries (got {len(attrs)})")
        for k, v in attrs.items():
            if not 1 <= len(k.encode()) <= 64:
                self.add(f"{field}[{k!r}]", "key must be 1..64 bytes")
            if len(v.encode()) > max_value:
                self.add(f"{field}[{k!r}]", f"value must be at most {max_value} bytes")

    def page_size(self, field: str, size: int, default: int, maximum: int) -> int:
        if size < 0 or size > maximum:
            self.add(field, f"must be 0..{maximum} (0 means {default})")
        return size or default

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def encode_page_token(scope: str, cursor: str) -> str:
    """An opaque, URL-safe token bound to the request's filter (``scope``)."""
    if not cursor:
        return ""
    raw = json.dumps([scope, cursor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(v: Violations, field: str, token: str, scope: str) -> str:
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_scope, cursor = json.loads(raw)
        if not isinstance(cursor, str) or got_scope != scope:
            raise ValueError
    except (ValueError, TypeError):
        v.add(field, "not a page token from a previous response to this request")
        return ""
    return cursor
