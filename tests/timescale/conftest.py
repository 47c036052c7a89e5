"""Fixtures for the real-TimescaleDB tests (PGlite + TimescaleDB 2.23 through Node).

They skip, with the reason, only when Node or the npm package is missing; under CI (CI=true),
where ``make deps`` installs both, a missing one is an error instead of a silent skip.
"""

from __future__ import annotations

import pytest

from tests.harness.require import missing

from .pglite import Connection, Server, unavailable

pytestmark = pytest.mark.timescale


def _require() -> None:
    if reason := unavailable():
        missing(reason)


@pytest.fixture(scope="session")
def pglite_available() -> None:
    _require()


@pytest.fixture(scope="module")
def pglite(pglite_available) -> Server:
    """One PGlite+TimescaleDB database for the whole test module (start-up costs ~2 s)."""
    with Server() as server:
        yield server


@pytest.fixture(scope="module")
def pglite_conn(pglite: Server) -> Connection:
    """The module's database as an asyncpg-like connection, for real store code."""
    return Connection(pglite)
