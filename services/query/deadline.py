"""A call's time budget, independent of gRPC (the servicer builds it from context.time_remaining())."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deadline:
    """Absolute monotonic deadline; ``None`` means the caller set none. ``capped``: the configured
    statement cap still applies (False only for the service's own shared computations, which
    have their own budget)."""

    at: float | None = None
    capped: bool = True
    clock: object = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float | None, *, capped: bool = True) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds, capped)

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - self.clock()

