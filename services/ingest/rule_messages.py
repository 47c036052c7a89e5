"""DetectionRule messages ↔ the rules file's JSON form, the one form rules are validated and stored in.

A rule arriving over gRPC is turned into the file form and checked by ``rules.parse_rule``, so a
rule from the API and one from the file pass exactly the same checks; its complaints are turned
back into field paths of the message (``rule.rate.window``).
"""

from __future__ import annotations

import re
from typing import Any

from banhammer.ingest.v1 import ingest_pb2
from services.runtime.errors import InvalidArgument

from .rules import SEVERITIES, Rule, RuleError, parse_rule

_SEVERITY_NAMES = {v: k for k, v in SEVERITIES.items()}
_AGGREGATES = {ingest_pb2.VALUE_AGGREGATE_SUM: "sum", ingest_pb2.VALUE_AGGREGATE_MAX: "max"}
# File keys whose message field has another name (durations are Duration fields there).
_FIELD_NAMES = {"window_seconds": "window", "baseline_window_seconds": "baseline_window",
                "duration_seconds": "duration", "cooldown_seconds": "cooldown"}
# parse_rule's messages read "rule 'x'.rate.window_seconds: ..." or "rules[0].name: ...".
_WHERE = re.compile(r"^(?:rule '[^']*'|rules\[\d+\]|rule)((?:\.\w+)*): (.*)$", re.S)


def _seconds(d) -> float:
    return d.seconds + d.nanos / 1e9


def to_definition(m: ingest_pb2.DetectionRule) -> dict[str, Any]:
    """The rule in the file's JSON form (unchecked: ``parse`` checks it)."""
    d: dict[str, Any] = {"name": m.name, "description": m.description, "enabled": m.enabled,
                         "severity": _SEVERITY_NAMES.get(m.severity, m.severity), "action_type": m.action_type}
    kind = m.WhichOneof("condition")
    if kind == "rate":
        d["rate"] = {"window_seconds": _seconds(m.rate.window), "max_count": m.rate.max_count}
    elif kind == "value":
        d["value"] = {"aggregate": _AGGREGATES.get(m.value.aggregate, "unspecified"),
                      "window_seconds": _seconds(m.value.window), "threshold": m.value.threshold}
    elif kind == "impossible_value":
        c = m.impossible_value
        d["impossible_value"] = {k: getattr(c, k) for k in ("min_value", "max_value") if c.HasField(k)}
    elif kind == "baseline":
        c = m.baseline
        d["baseline"] = {"percentile": c.percentile, "baseline_window_seconds": _seconds(c.baseline_window),
                         "window_seconds": _seconds(c.window), "multiplier": c.multiplier or None,
                         "min_population": c.min_population or None}
    if m.HasField("ban"):
        if m.ban.WhichOneof("length") == "permanent":
            d["ban"] = {"permanent": m.ban.permanent}
        else:
            d["ban"] = {"duration_seconds": _seconds(m.ban.duration)}
    if m.HasField("cooldown"):
        d["cooldown_seconds"] = _seconds(m.cooldown)
    return d


def parse(m: ingest_pb2.DetectionRule, field: str = "rule") -> tuple[Rule, dict[str, Any]]:
    """The checked rule and its file form; INVALID_ARGUMENT naming the message field otherwise."""
    definition = to_definition(m)
    for key in ("name", "description", "action_type"):
        if "\x00" in definition[key]:  # PostgreSQL's jsonb cannot hold it
            raise InvalidArgument.field(f"{field}.{key}", "must not contain NUL")
    try:
        return parse_rule(definition, "rule"), definition
    except RuleError as exc:
        raise InvalidArgument.field(*_field_of(str(exc), field)) from None


def _field_of(message: str, field: str) -> tuple[str, str]:
    match = _WHERE.match(message)
    if not match:
        return field, message
    parts = [_FIELD_NAMES.get(p, p) for p in match.group(1).split(".") if p]
    if not parts and "exactly one of" in match.group(2):
        parts = ["condition"]
    return ".".join([field, *parts]), match.group(2)
