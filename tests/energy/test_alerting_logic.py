"""Pure alert and forecast logic with synthetic series (no stores)."""

from __future__ import annotations

import math

import pytest

from services.energy import alerting, forecasting
from services.energy.models import ABOVE, BELOW
from services.runtime import FailedPrecondition

S = 10**9
H = 3600 * S


def simulate(rule: alerting.Threshold, values: list[float], step_ns: int = 10 * S) -> list[tuple[int, str]]:
    """Feed a series one reading at a time, like evaluator ticks; returns the transitions."""
    samples, is_open, out = [], False, []
    for i, v in enumerate(values):
        samples.append((i * step_ns, v))
        d = alerting.decide_threshold(rule, samples, is_open)
        if d.action != "none":
            out.append((i, d.action))
            is_open = d.action == "fire"
    return out


def test_hovering_at_the_threshold_does_not_flap_with_hysteresis():
    hover = [499.0, 501.0] * 20  # crosses the threshold every reading
    with_hysteresis = alerting.Threshold(ABOVE, 500.0, 450.0, 0)
    assert simulate(with_hysteresis, hover) == [(1, "fire")]
    without = alerting.Threshold(ABOVE, 500.0, 500.0, 0)
    assert len(simulate(without, hover)) == 39  # every crossing after the first reading: flapping


def test_min_duration_needs_an_unbroken_run():
    rule = alerting.Threshold(ABOVE, 500.0, 450.0, 60 * S)  # readings every 10 s
    spike = [400.0] * 5 + [600.0] * 3 + [400.0] + [600.0] * 7 + [430.0] * 8
    # The 3-reading spike (20 s) never fires; the 7-reading run fires once it spans 60 s (index 15);
    # 430 is past the clear threshold, and clears once that has held 60 s too (index 22).
    assert simulate(rule, spike) == [(15, "fire"), (22, "clear")]


def test_below_rules_mirror_above():
    rule = alerting.Threshold(BELOW, 18.0, 19.0, 0)
    assert simulate(rule, [20.0, 17.5, 18.5, 17.9, 18.9, 19.0]) == [(1, "fire"), (5, "clear")]


def test_drift_fires_after_whole_hours_and_clears_within_margin():
    pairs = [(100.0, 100.0), (150.0, 100.0), (160.0, 100.0)]
    assert alerting.decide_drift(pairs[:2], 20.0, 2, False).action == "none"
    assert alerting.decide_drift(pairs, 20.0, 2, False).action == "fire"
    assert alerting.decide_drift(pairs + [(110.0, 100.0)], 20.0, 2, True).action == "clear"
    assert alerting.decide_drift(pairs, 20.0, 2, True).action == "none"


def test_forecast_learns_the_daily_profile_and_reports_holdout_error():
    profile = [10 + 5 * math.sin(h / 24 * 2 * math.pi) for h in range(24)]
    now = 20 * 24 * H + 30 * 60 * S  # 00:30 on day 20
    history = {t: profile[(t // H) % 24] for t in range(now - now % H - 8 * 24 * H, now - now % H, H)}
    fc = forecasting.forecast(history, now)
    assert [t for t, _ in fc.points] == [now - now % H + (i + 1) * H for i in range(24)]
    assert all(k == pytest.approx(profile[(t // H) % 24]) for t, k in fc.points)
    assert fc.holdout_mape == pytest.approx(0.0, abs=1e-9)
    assert fc.holdout_end_ns - fc.holdout_start_ns == 24 * H and fc.training_points == 7 * 24
    noisy = {t: v * (1.2 if (t // H) % 2 else 1.0) if t >= fc.holdout_start_ns else v for t, v in history.items()}
    assert forecasting.forecast(noisy, now).holdout_mape == pytest.approx(100 * (0.2 / 1.2) / 2, rel=1e-6)
    with pytest.raises(FailedPrecondition):
        forecasting.forecast(dict(list(history.items())[-30:]), now)
