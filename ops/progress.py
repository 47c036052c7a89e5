"""Progress lines for steps that can take a while: what starts, then how much and how long."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class Step:
    def __init__(self) -> None:
        self.note = ""


def size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@contextlib.contextmanager
def step(what: str, stream=None) -> Iterator[Step]:
    """Prints ``what ...`` now and ``what: done (note) in 1.2 s`` when the block ends (stdout, flushed)."""
    stream = stream or sys.stdout
    print(f"{what} ...", file=stream, flush=True)
    started = time.monotonic()
    state = Step()
    yield state
    note = f" ({state.note})" if state.note else ""
    print(f"{what}: done{note} in {time.monotonic() - started:.1f} s", file=stream, flush=True)
