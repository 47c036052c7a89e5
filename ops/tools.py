"""Running the stores' own tools (pg_dump, influxd, redis-cli): a failure is one line naming the tool."""

from __future__ import annotations

import os
import shutil
import subprocess

from services.runtime.cli import UsageError


class ToolFailed(OSError):
    """A store tool exited non-zero; the message is its last line of output (an OSError, so the CLI
    reports it as one line like any failure outside this process)."""


def find(name: str, directory: str = "") -> str:
    path = os.path.join(directory, name) if directory else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        where = f"in {directory}" if directory else "on PATH"
        raise UsageError(f"{name} not found {where}: install it (see the README, Operability)")
    return path


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise ToolFailed(f"{os.path.basename(argv[0])} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout + done.stderr


def version(argv: list[str]) -> str:
    return run(argv).strip().splitlines()[0]
