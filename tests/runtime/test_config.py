from dataclasses import dataclass

import pytest

from services.runtime.config import ConfigError, describe, env, load


@dataclass(frozen=True)
class Sample:
    url: str = env("SAMPLE_URL", doc="required")
    port: int = env("SAMPLE_PORT", 8080)
    ratio: float = env("SAMPLE_RATIO", 0.5)
    debug: bool = env("SAMPLE_DEBUG", False)
    tags: list[str] = env("SAMPLE_TAGS", [])
    optional: int | None = env("SAMPLE_OPTIONAL", None)


def test_parses_typed_values():
    conf = load(Sample, {"SAMPLE_URL": "postgresql://x", "SAMPLE_PORT": "9", "SAMPLE_RATIO": "1.5",
                         "SAMPLE_DEBUG": "yes", "SAMPLE_TAGS": "a, b,,c", "SAMPLE_OPTIONAL": "3"})
    assert conf == Sample("postgresql://x", 9, 1.5, True, ["a", "b", "c"], 3)


def test_defaults_apply():
    conf = load(Sample, {"SAMPLE_URL": "u"})
    assert (conf.port, conf.debug, conf.tags, conf.optional) == (8080, False, [], None)


def test_reports_every_problem_at_once():
    with pytest.raises(ConfigError) as err:
        load(Sample, {"SAMPLE_PORT": "eighty", "SAMPLE_DEBUG": "maybe"})
    text = str(err.value)
    assert "SAMPLE_URL: required" in text
    assert "SAMPLE_PORT" in text and "SAMPLE_DEBUG" in text


def test_describe_lists_variables():
    rows = {name: default for name, default, _ in describe(Sample)}
    assert rows["SAMPLE_URL"] == "(required)"
    assert rows["SAMPLE_PORT"] == "8080"
