"""Request validation that reports every problem at once: collect field violations, then raise one
INVALID_ARGUMENT. Services add their own field kinds as functions taking a ``Violations``, or as a
subclass; the collecting, text bounds and paging rules live here."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from . import pagination
from .errors import FieldViolation, InvalidArgument

T = TypeVar("T")


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        """INVALID_ARGUMENT naming every violation collected so far, if there is any."""
        if self.items:
            raise InvalidArgument(self.items)

    def text(self, field: str, value: str, lo: int, hi: int, pattern: re.Pattern[str] | None = None,
             what: str = "", *, unit: Literal["bytes", "characters"] = "bytes", forbid_nul: bool = False) -> None:
        """``value`` is ``lo``..``hi`` UTF-8 bytes (or characters) long, with ``forbid_nul`` has no NUL
        (PostgreSQL text cannot hold one) and, if given, matches ``pattern`` (described to the caller as
        ``what``, else the pattern itself)."""
        n = len(value.encode()) if unit == "bytes" else len(value)
        if not lo <= n <= hi:
            self.add(field, f"must be {lo}..{hi} {unit} (got {n})")
        elif forbid_nul and "\x00" in value:
            self.add(field, "must not contain NUL characters")
        elif pattern is not None and not pattern.fullmatch(value):
            self.add(field, f"must match {what or pattern.pattern}")

    def page_size(self, field: str, value: int, default: int, maximum: int) -> int:
        """The page size to use (see ``pagination.page_size``); ``default`` after a violation."""
        return self._collect(lambda: pagination.page_size(value, default, maximum, field), default)

    def page_token(self, token: str, kind: str, filters: Any, field: str = pagination.FIELD) -> dict[str, Any] | None:
        """The cursor of ``token`` (see ``pagination.decode``); ``None`` after a violation."""
        return self._collect(lambda: pagination.decode(token, kind, filters, field), None)

    def _collect(self, check: Callable[[], T], fallback: T) -> T:
        try:
            return check()
        except InvalidArgument as err:
            self.items.extend(err.violations)
            return fallback
