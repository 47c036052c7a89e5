"""Detection rules: their JSON form and its checks, for the rules file (INGEST_RULES_FILE, else
rules.default.json), which seeds the rulebook, and for rules stored by RuleService (rulebook.py).

File format (limits as in banhammer.ingest.v1.DetectionRule)::

    {"rules": [
      {"name": "reward_rate", "description": "...", "enabled": true, "severity": "HIGH",
       "action_type": "reward_collection",
       "rate": {"window_seconds": 60, "max_count": 120},
       "ban": {"duration_seconds": 86400},           # or {"permanent": true}; omit: no ban
       "cooldown_seconds": 300}                       # omit: the rule's window
    ]}

Exactly one condition per rule: ``rate``, ``value`` ({"aggregate": "sum"|"max", "window_seconds",
"threshold"}), ``impossible_value`` ({"min_value", "max_value"}, either optional) or ``baseline``
({"percentile", "baseline_window_seconds", "window_seconds", "multiplier", "min_population"}).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from services.runtime.config import ConfigError

DEFAULT_FILE = Path(__file__).with_name("rules.default.json")
SEVERITIES = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DAY = 86400.0
# A rule without a window (impossible_value) still should not fire on every single action.
IMPOSSIBLE_COOLDOWN = 60.0


@dataclass(frozen=True)
class Rate:
    window: float
    max_count: int


@dataclass(frozen=True)
class Value:
    aggregate: str  # "sum" | "max"
    window: float
    threshold: float


@dataclass(frozen=True)
class Impossible:
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class Baseline:
    percentile: float
    baseline_window: float
    window: float
    multiplier: float
    min_population: int


Condition = Rate | Value | Impossible | Baseline
T = TypeVar("T")


def dispatch(c: Condition, *, rate: Callable[[Rate], T], value: Callable[[Value], T],
             impossible: Callable[[Impossible], T], baseline: Callable[[Baseline], T]) -> T:
    """Call the handler for the condition's kind. Every place that treats the kinds differently
    (detection, dry runs, the contract's messages) goes through here and names all four, so a new
    kind cannot be half handled."""
    if isinstance(c, Rate):
        return rate(c)
    if isinstance(c, Value):
        return value(c)
    if isinstance(c, Impossible):
        return impossible(c)
    if isinstance(c, Baseline):
        return baseline(c)
    raise TypeError(f"unknown rule condition {type(c).__name__}")


def baseline_limit(c: Baseline, rate: float) -> float:
    """Actions in ``c.window`` that exceed ``multiplier`` times the population's ``rate`` (actions
    per second), never fewer than ``multiplier``: when the window is much shorter than the baseline
    window (5 min vs 1 h) the scaled limit falls under one action, and a single action then
    "exceeded" it: every active player was flagged (and each flag cost writes)."""
    return max(rate * c.multiplier * c.window, c.multiplier)


@dataclass(frozen=True)
class Ban:
    seconds: float | None  # None: permanent

    @property
    def permanent(self) -> bool:
        return self.seconds is None


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    enabled: bool
    severity: int
    action_type: str  # "" = every action type
    condition: Condition
    ban: Ban | None
    cooldown: float | None  # None: the rule's window

    @property
    def window(self) -> float:
        return getattr(self.condition, "window", 0.0)

    @property
    def effective_cooldown(self) -> float:
        if self.cooldown is not None:
            return self.cooldown
        return self.window or IMPOSSIBLE_COOLDOWN


class RuleError(ConfigError):
    pass


def _num(d: dict, key: str, where: str, lo: float, hi: float, *, required: bool = True, integer: bool = False) -> Any:
    if key not in d or d[key] is None:
        if required:
            raise RuleError(f"{where}.{key}: required")
        return None
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (integer and v != int(v)):
        raise RuleError(f"{where}.{key}: expected a finite {'integer' if integer else 'number'}, got {v!r}")
    if not lo <= v <= hi:
        raise RuleError(f"{where}.{key}: must be within [{lo:g}, {hi:g}], got {v!r}")
    return int(v) if integer else float(v)


def _condition(d: dict, where: str) -> Condition:
    kinds = [k for k in ("rate", "value", "impossible_value", "baseline") if k in d]
    if len(kinds) != 1:
        raise RuleError(f"{where}: exactly one of rate, value, impossible_value, baseline is required")
    kind = kinds[0]
    c = d[kind]
    w = f"{where}.{kind}"
    if not isinstance(c, dict):
        raise RuleError(f"{w}: expected an object")
    if kind == "rate":
        return Rate(_num(c, "window_seconds", w, 1, DAY), _num(c, "max_count", w, 1, 2**62, integer=True))
    if kind == "value":
        agg = c.get("aggregate")
        if agg not in ("sum", "max"):
            raise RuleError(f"{w}.aggregate: expected \"sum\" or \"max\", got {agg!r}")
        return Value(agg, _num(c, "window_seconds", w, 1, DAY), _num(c, "threshold", w, -math.inf, math.inf))
    if kind == "impossible_value":
        lo = _num(c, "min_value", w, -math.inf, math.inf, required=False)
        hi = _num(c, "max_value", w, -math.inf, math.inf, required=False)
        if lo is None and hi is None:
            raise RuleError(f"{w}: set min_value, max_value or both")
        if lo is not None and hi is not None and lo > hi:
            raise RuleError(f"{w}: min_value is above max_value")
        return Impossible(lo, hi)
    pct = _num(c, "percentile", w, 0, 100)
    if pct in (0.0, 100.0):
        raise RuleError(f"{w}.percentile: must be strictly between 0 and 100")
    return Baseline(
        percentile=pct,
        baseline_window=_num(c, "baseline_window_seconds", w, 60, 7 * DAY),
        window=_num(c, "window_seconds", w, 1, DAY),
        multiplier=_num(c, "multiplier", w, 1, 1e9, required=False) or 1.0,
        min_population=_num(c, "min_population", w, 0, 2**62, required=False, integer=True) or 100,
    )


def _ban(d: Any, where: str) -> Ban | None:
    if d is None:
        return None
    if not isinstance(d, dict) or (("permanent" in d) == ("duration_seconds" in d)):
        raise RuleError(f"{where}: expected {{\"duration_seconds\": N}} or {{\"permanent\": true}}")
    if "permanent" in d:
        if d["permanent"] is not True:
            raise RuleError(f"{where}.permanent: must be true when set")
        return Ban(None)
    return Ban(_num(d, "duration_seconds", where, 60, 3650 * DAY))


def parse_rule(d: Any, where: str) -> Rule:
    if not isinstance(d, dict):
        raise RuleError(f"{where}: expected an object")
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(f"{where}.name: 1..64 bytes of lower_snake_case required, got {name!r}")
    where = f"rule {name!r}"
    sev = d.get("severity")
    if sev not in SEVERITIES:
        raise RuleError(f"{where}.severity: one of {', '.join(SEVERITIES)} required, got {sev!r}")
    description = d.get("description", "")
    action_type = d.get("action_type", "")
    if not isinstance(description, str) or len(description.encode()) > 1024:
        raise RuleError(f"{where}.description: at most 1024 bytes of text")
    if not isinstance(action_type, str) or len(action_type.encode()) > 64:
        raise RuleError(f"{where}.action_type: at most 64 bytes of text")
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(f"{where}.enabled: expected true or false")
    return Rule(
        name=name, description=description, enabled=enabled, severity=SEVERITIES[sev],
        action_type=action_type, condition=_condition(d, where), ban=_ban(d.get("ban"), f"{where}.ban"),
        cooldown=_num(d, "cooldown_seconds", where, 0, DAY, required=False),
    )


def parse_rules(doc: Any) -> list[Rule]:
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError("rules file: expected {\"rules\": [...]}")
    rules = [parse_rule(d, f"rules[{i}]") for i, d in enumerate(doc["rules"])]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RuleError(f"rules file: duplicate rule names {dupes}")
    return sorted(rules, key=lambda r: r.name)


def load_rules(path: str = "") -> list[Rule]:
    file = Path(path) if path else DEFAULT_FILE
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise RuleError(f"INGEST_RULES_FILE {str(file)!r}: {exc}") from exc
    return parse_rules(doc)
