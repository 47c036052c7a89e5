"""Energy's field kinds (ids, numbers, dates, update masks) on top of the runtime's violation collector."""

from __future__ import annotations

import datetime as dt
import math
import re

from services.runtime import validation

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


class Violations(validation.Violations):
    """The runtime's collector plus the energy service's own field kinds."""

    def positive_id(self, field: str, value: int) -> None:
        if value <= 0:
            self.add(field, "must be > 0")

    def finite(self, field: str, value: float) -> bool:
        if not math.isfinite(value):
            self.add(field, "must be finite")
            return False
        return True

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
