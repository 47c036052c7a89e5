"""The session service's own field kinds on top of the runtime's violation collector, and the shape
of its page-token cursors: the last Redis sorted-set member of the previous page."""

from __future__ import annotations

from typing import Any

from services.runtime import pagination, validation


class Violations(validation.Violations):
    def attributes(self, field: str, attrs: dict[str, str], max_entries: int, max_value: int) -> None:
        if len(attrs) > max_entries:
            self.add(field, f"at most {max_entries} entries (got {len(attrs)})")
        for k, v in attrs.items():
            if not 1 <= len(k.encode()) <= 64:
                self.add(f"{field}[{k!r}]", "key must be 1..64 bytes")
            if len(v.encode()) > max_value:
                self.add(f"{field}[{k!r}]", f"value must be at most {max_value} bytes")


def member_token(kind: str, filters: Any, member: str) -> str:
    """The next-page token after ``member`` ("" when there is no next page)."""
    return pagination.encode(kind, filters, {"m": member}) if member else ""


def cursor_member(cursor: dict[str, Any] | None) -> str:
    """The member a decoded cursor resumes after ("" for the first page)."""
    return pagination.text(cursor.get("m")) if cursor is not None else ""
