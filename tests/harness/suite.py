"""The in-process suite: one runtime hosting all four services, on its own event-loop thread.

Its own loop (not pytest's) means sync tests, blocking clients and async tests can all call it
without deadlocking it; ``suite.run(coro)`` runs a coroutine in the suite's loop (e.g. to stop
the runtime in a graceful-shutdown test).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from .health import wait_serving
from .paths import TARGETS


class Suite:
    def __init__(self, env: dict[str, str], targets: tuple[str, ...] = TARGETS) -> None:
        self.env = env
        self.targets = targets
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="banhammer-suite", daemon=True)
        self.runtime = None

    @property
    def port(self) -> int:
        return self.runtime.port

    @property
    def addr(self) -> str:
        """host:port of the runtime (all four services; no gateway in between)."""
        return f"127.0.0.1:{self.runtime.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        """Run ``coro`` in the suite's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, timeout: float = 60.0) -> Suite:
        from services.runtime.server import start_runtime

        self._thread.start()
        self.runtime = self.run(start_runtime(list(self.targets), environ=self.env))
        self.run(wait_serving(self.addr, "", timeout=timeout), timeout=timeout + 5)
        return self

    def stop(self) -> None:
        try:
            if self.runtime is not None:
                self.run(self.runtime.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if not self.loop.is_running():
                self.loop.close()
