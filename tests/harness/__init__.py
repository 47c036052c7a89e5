"""Test harness: real throwaway servers on free ports (no fakes of any store).

The fixtures live in ``tests/harness/fixtures.py`` (registered by ``tests/conftest.py``); the
helpers below are importable from test modules: ``from tests.harness import wait_serving``.
"""

from .health import GATEWAY_HEADER, auth_metadata, check_health, gateway_metadata, wait_serving
from .processes import ManagedProcess, free_port, wait_until
from .statuses import retry_delay

__all__ = [
    "GATEWAY_HEADER", "ManagedProcess", "auth_metadata", "check_health", "free_port", "gateway_metadata",
    "retry_delay", "wait_serving", "wait_until",
]
