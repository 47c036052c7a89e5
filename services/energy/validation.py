"""Field checks that collect every violation of a request before raising INVALID_ARGUMENT."""

from __future__ import annotations

import datetime as dt
import math
import re

from services.runtime import FieldViolation, InvalidArgument

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)

    def chars(self, field: str, value: str, lo: int, hi: int) -> None:
        if not lo <= len(value) <= hi:
            self.add(field, f"must be {lo}..{hi} characters")

    def utf8(self, field: str, value: str, lo: int, hi: int, *, no_control: bool = False) -> None:
        size = len(value.encode())
        if not lo <= size <= hi:
            self.add(field, f"must be {lo}..{hi} bytes")
        elif no_control and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            self.add(field, "must not contain control characters")

    def positive_id(self, field: str, value: int) -> None:
        if value <= 0:
            self.add(field, "must be > 0")

    def finite(self, field: str, value: float) -> bool:
        if not math.isfinite(value):
            self.add(field, "must be finite")
            return False
        return True

    def page_size(self, field: str, value: int, default: int, maximum: int) -> int:
        if value < 0 or value > maximum:
            self.add(field, f"must be 0..{maximum}")
            return default
        return value or default

    def date(self, field: str, value: str) -> dt.date | None:
        if not _DATE.match(value):
            self.add(field, "must be a date YYYY-MM-DD")
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.add(field, "is not a valid calendar date")
            return None

    def month(self, field: str, value: str) -> dt.date | None:
        if not _MONTH.match(value):
            self.add(field, "must be a month YYYY-MM")
            return None
        try:
            return dt.date.fromisoformat(value + "-01")
        except ValueError:
            self.add(field, "is not a valid month")
            return None


def check_mask(paths: list[str], allowed: set[str], field: str = "update_mask") -> list[str]:
    v = Violations()
    if not paths:
        v.add(f"{field}.paths", "must name at least one field")
    for i, path in enumerate(paths):
        if path not in allowed:
            v.add(f"{field}.paths[{i}]", f"must be one of {', '.join(sorted(allowed))}")
    v.raise_if_any()
    return list(dict.fromkeys(paths))
