"""Subprocesses owned by the test session: started in their own process group, always reaped."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_LIVE: set[ManagedProcess] = set()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               proc: ManagedProcess | None = None, interval: float = 0.1) -> None:
    """Poll ``predicate`` until true; raise (with the process log's tail) on timeout or exit."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and not proc.running:
            raise RuntimeError(f"{proc.name} exited (code {proc.returncode}) before {what}\n{proc.tail()}")
        if time.monotonic() >= deadline:
            tail = f"\n{proc.tail()}" if proc is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


class ManagedProcess:
    """One server process; ``stop()`` sends SIGTERM, then SIGKILLs the whole group."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.argv, self.log_path, self.env, self.cwd = name, argv, log_path, env, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=self.env, cwd=self.cwd, start_new_session=True)
        _LIVE.add(self)
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        if self.popen is None:
            return
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(sig)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)  # the leader and anything it left behind
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.wait(5)
        finally:
            _LIVE.discard(self)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text)


@atexit.register
def _reap_all() -> None:
    """Belt and braces: even if a fixture's teardown never ran, no server outlives pytest."""
    for proc in list(_LIVE):
        proc.stop(timeout=3)
