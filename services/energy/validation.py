"""Energy's field kinds (ids, numbers, dates, sensor tags, update masks) on top of the runtime's
violation collector."""

from __future__ import annotations

import datetime as dt
import math
import re

from services.runtime import validation

from .influx.lineprotocol import unrepresentable

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")

#: Sensor tags and their sizes (UTF-8 bytes), one rule for every place a tag value arrives: readings
#: written, alert rule scopes, reading filters. A value one of them accepts, the others accept too.
TAGS = {"sensor_type": (1, 64), "floor": (0, 16), "room": (0, 64)}


def tag_error(value: str, lo: int, hi: int) -> str | None:
    """Why ``value`` cannot be a tag value (None: it can): out of ``lo``..``hi`` bytes, a control
    character (InfluxDB's line protocol and InfluxQL cannot carry them), or a backslash InfluxDB
    would read as an escape."""
    if value.isascii() and lo <= len(value) <= hi and value.isprintable() and "\\" not in value:
        return None  # the common case (hot path: every reading), decided without encoding
    size = len(value.encode())
    if not lo <= size <= hi:
        return f"must be {lo}..{hi} bytes"
    if validation.has_control(value):
        return "must not contain control characters"
    if unrepresentable(value):
        return ("a backslash may not end the value or precede a comma, space or equals sign "
                "(InfluxDB cannot store it)")
    return None


class Violations(validation.Violations):
    """The runtime's collector plus the energy service's own field kinds."""

    def positive_id(self, field: str, value: int) -> None:
        self.id(field, value)

    def tag(self, field: str, tag: str, value: str) -> None:
        """``value`` is a valid value of sensor tag ``tag`` (see ``TAGS``)."""
        if error := tag_error(value, *TAGS[tag]):
            self.add(field, error)

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
