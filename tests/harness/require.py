"""A test that needs a tool the machine lacks: skipped with the reason on a developer's machine,
failed under CI (``CI=true``), where the Makefile and .ci/run install every tool the tests use."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(reason: str) -> NoReturn:
    """Skip the calling test (or fixture) because of ``reason``; under CI, fail it instead."""
    if under_ci():
        pytest.fail(f"missing under CI, where it is installed: {reason}", pytrace=False)
    pytest.skip(reason)
