"""Alert decisions, pure: threshold hysteresis with a minimum duration, and forecast drift.

A threshold rule fires when a series' readings have stayed beyond ``threshold`` for ``min_duration``
(the run of consecutive qualifying readings ending at the latest one spans at least that long), and
clears only once they have stayed back past ``clear_threshold`` for ``min_duration``. Between the two
thresholds nothing changes, so a value hovering at the threshold does not flap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .models import ABOVE

Sample = tuple[int, float]  # (time ns, value), oldest first


@dataclass(frozen=True)
class Threshold:
    comparison: int  # ABOVE or BELOW
    threshold: float
    clear_threshold: float
    min_duration_ns: int

    def beyond(self, value: float) -> bool:
        return value > self.threshold if self.comparison == ABOVE else value < self.threshold

    def back(self, value: float) -> bool:
        return value <= self.clear_threshold if self.comparison == ABOVE else value >= self.clear_threshold


def held_for(samples: Sequence[Sample], predicate: Callable[[float], bool], min_duration_ns: int) -> Sample | None:
    """The first sample of the qualifying run ending at the latest sample, if that run spans at least
    ``min_duration_ns``; else None."""
    if not samples or not predicate(samples[-1][1]):
        return None
    start = len(samples) - 1
    while start > 0 and predicate(samples[start - 1][1]):
        start -= 1
    if samples[-1][0] - samples[start][0] >= min_duration_ns:
        return samples[start]
    return None


@dataclass(frozen=True)
class Decision:
    action: str  # "fire" | "clear" | "none"
    value: float = 0.0


def decide_threshold(rule: Threshold, samples: Sequence[Sample], is_open: bool) -> Decision:
    """What to do for one series given its recent samples and whether it has an open alert."""
    if not samples:
        return Decision("none")
    if not is_open:
        if held_for(samples, rule.beyond, rule.min_duration_ns) is not None:
            return Decision("fire", samples[-1][1])
    elif held_for(samples, rule.back, rule.min_duration_ns) is not None:
        return Decision("clear", samples[-1][1])
    return Decision("none")


def deviation_percent(actual: float, forecast: float) -> float:
    if forecast <= 0:
        return 0.0 if actual <= 0 else float("inf")
    return abs(actual - forecast) / forecast * 100.0


def decide_drift(pairs: Sequence[tuple[float, float]], margin_percent: float, hours: int, is_open: bool) -> Decision:
    """``pairs``: (actual, forecast) kWh of the latest complete hours, oldest first. Fires when each of the
    last ``hours`` deviates by more than the margin; clears when the latest hour is back within it."""
    if not pairs:
        return Decision("none")
    if not is_open:
        recent = pairs[-hours:]
        if len(recent) == hours and all(deviation_percent(a, f) > margin_percent for a, f in recent):
            return Decision("fire", recent[-1][0])
    elif deviation_percent(*pairs[-1]) <= margin_percent:
        return Decision("clear", pairs[-1][0])
    return Decision("none")
