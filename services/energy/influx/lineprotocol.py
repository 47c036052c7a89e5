"""InfluxDB line protocol encoding, escaped exactly as InfluxDB parses it.

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp_ns]

- measurement: commas and spaces are backslash-escaped;
- tag keys, tag values and field keys: commas, equals signs and spaces are backslash-escaped;
- string field values are double-quoted, with double quotes and backslashes backslash-escaped;
- integers carry an ``i`` suffix, floats are written in full precision (``repr``), booleans as t/f.

InfluxDB unescapes names and tag values by plain replacement of ``\\,`` ``\\=`` ``\\ `` and keeps any
other backslash literally, so a name ending in a backslash, or with a backslash right before a comma,
equals sign or space, has no encoding: ``unrepresentable`` finds those so callers can reject them.
Empty tag values cannot be written at all: such tags are omitted (InfluxQL ``tag = ''`` matches).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})
_UNREPRESENTABLE = re.compile(r"\\(?:[ ,=]|$)")
_NEEDS_KEY_ESCAPE = re.compile(r"[ ,=]")


def unrepresentable(name: str) -> bool:
    """True for a tag value/key or measurement InfluxDB cannot store exactly (see module doc)."""
    return "\\" in name and _UNREPRESENTABLE.search(name) is not None


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key."""
    return name.translate(_KEY) if _NEEDS_KEY_ESCAPE.search(name) else name


def quote_string(value: str) -> str:
    return '"' + value.translate(_STRING) + '"'


def field_value(value: object) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "t" if value else "f"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    if isinstance(value, str):
        return quote_string(value)
    raise TypeError(f"unsupported field type {type(value).__name__}")


def encode_point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object], time_ns: int | None) -> str:
    """One line (without the newline). Tags are sorted by key, as InfluxDB recommends."""
    if not fields:
        raise ValueError("a point needs at least one field")
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value != "":
            parts.append(f",{escape_key(key)}={escape_key(value)}")
    parts.append(" ")
    parts.append(",".join(f"{escape_key(k)}={field_value(v)}" for k, v in fields.items()))
    if time_ns is not None:
        parts.append(f" {time_ns}")
    return "".join(parts)
