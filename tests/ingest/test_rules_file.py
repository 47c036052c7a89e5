"""The rules file: the shipped defaults load; a bad file is a configuration error naming the problem."""

from __future__ import annotations

import json

import pytest

from services.ingest.rules import Baseline, Ban, Impossible, Rate, RuleError, Value, load_rules, parse_rules


def test_shipped_defaults_cover_every_condition_kind():
    rules = {r.name: r for r in load_rules("")}
    kinds = {type(r.condition) for r in rules.values()}
    assert kinds == {Rate, Value, Impossible, Baseline}
    assert rules["reward_impossible"].ban == Ban(604800.0)
    assert rules["reward_baseline"].condition.percentile == 99.9
    assert rules["reward_rate"].effective_cooldown == 300 and rules["reward_value_hourly"].effective_cooldown == 3600


def rule(**overrides) -> dict:
    base = {"name": "r", "severity": "HIGH", "rate": {"window_seconds": 60, "max_count": 5}}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("doc,message", [
    ({"rules": [rule(rate=None)]}, "exactly one of"),
    ({"rules": [rule(value={"aggregate": "sum", "window_seconds": 5, "threshold": 1})]}, "exactly one of"),
    ({"rules": [rule(severity="SEVERE")]}, "severity"),
    ({"rules": [rule(name="Bad-Name")]}, "lower_snake_case"),
    ({"rules": [rule(rate={"window_seconds": 0, "max_count": 5})]}, "window_seconds"),
    ({"rules": [rule(rate={"window_seconds": 60, "max_count": 1.5})]}, "max_count"),
    ({"rules": [rule(rate=None, value={"aggregate": "avg", "window_seconds": 60, "threshold": 1})]}, "aggregate"),
    ({"rules": [rule(rate=None, impossible_value={})]}, "min_value, max_value or both"),
    ({"rules": [rule(rate=None, baseline={"percentile": 100, "baseline_window_seconds": 3600, "window_seconds": 60})]},
     "percentile"),
    ({"rules": [rule(ban={"duration_seconds": 10})]}, "duration_seconds"),
    ({"rules": [rule(ban={"permanent": True, "duration_seconds": 60})]}, "ban"),
    ({"rules": [rule(), rule()]}, "duplicate"),
    ({"rule": []}, "expected"),
])
def test_bad_rules_are_rejected(doc, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(doc)


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text("{not json")
    with pytest.raises(RuleError, match="rules.json"):
        load_rules(str(path))
    path.write_text(json.dumps({"rules": [rule(ban={"permanent": True})]}))
    [r] = load_rules(str(path))
    assert r.ban.permanent and r.effective_cooldown == 60
