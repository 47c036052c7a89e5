"""Next-24-hour consumption forecast, pure: the hour-of-day mean of the last 7 days.

Honest and simple: each forecast hour is the mean of the same UTC hour over the previous 7 days
(hours without data fall back to the mean of all training hours). Its error is measured by refitting
on the history before the last complete day and predicting that held-out day (MAPE over hours with
non-zero consumption).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.runtime import FailedPrecondition

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
MODEL = "hour_of_day_mean_7d"
WINDOW_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    points: list[tuple[int, float]]  # (hour start ns, kWh)
    holdout_mape: float
    holdout_start_ns: int
    holdout_end_ns: int
    training_points: int


def _fit(history: dict[int, float], end_ns: int) -> tuple[dict[int, float], float, int]:
    """Per hour-of-day means of the WINDOW_DAYS before end_ns; (means, overall mean, points used)."""
    start = end_ns - WINDOW_DAYS * DAY_NS
    buckets: dict[int, list[float]] = {}
    used = [v for t, v in history.items() if start <= t < end_ns]
    for t, v in history.items():
        if start <= t < end_ns:
            buckets.setdefault((t // HOUR_NS) % 24, []).append(v)
    overall = sum(used) / len(used) if used else 0.0
    return {h: sum(vs) / len(vs) for h, vs in buckets.items()}, overall, len(used)


def _predict(means: dict[int, float], overall: float, hour_start_ns: int) -> float:
    return max(0.0, means.get((hour_start_ns // HOUR_NS) % 24, overall))


def forecast(history: dict[int, float], now_ns: int, min_history_hours: int = 48) -> Forecast:
    """``history``: kWh per hour start (ns). Forecasts the 24 hours from the next whole hour."""
    current_hour = now_ns - now_ns % HOUR_NS
    complete = {t: v for t, v in history.items() if t < current_hour}
    holdout_end = current_hour
    holdout_start = holdout_end - DAY_NS
    training = {t: v for t, v in complete.items() if t < holdout_start}
    if len(complete) < min_history_hours or not training:
        raise FailedPrecondition(
            f"need at least {min_history_hours} hours of consumption history before the last day "
            f"(have {len(complete)} hourly points)")
    means, overall, _ = _fit(training, holdout_start)
    errors = []
    for t in range(holdout_start, holdout_end, HOUR_NS):
        actual = complete.get(t)
        if actual:
            errors.append(abs(actual - _predict(means, overall, t)) / actual)
    mape = 100.0 * sum(errors) / len(errors) if errors else 0.0
    means, overall, used = _fit(complete, current_hour)
    start = current_hour + HOUR_NS
    points = [(start + i * HOUR_NS, _predict(means, overall, start + i * HOUR_NS)) for i in range(24)]
    return Forecast(points, mape, holdout_start, holdout_end, used)


def expected(history: dict[int, float], hour_start_ns: int) -> float | None:
    """What the model would have forecast for a (past) hour from the 7 days before it."""
    means, overall, used = _fit(history, hour_start_ns)
    return _predict(means, overall, hour_start_ns) if used else None
