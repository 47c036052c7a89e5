"""Process bookkeeping for the local stack: pid files, start, stop, port checks, waiting.

Every process is started in its own session (so its process group id is its pid) and
recorded in ``<state>/run/<name>.pid`` with a marker string expected in its command line,
so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.cli import UsageError


class StackError(UsageError):
    """A problem the user can fix: one line, no traceback (details go to stderr before it)."""


@dataclass
class Proc:
    name: str
    argv: list[str]
    marker: str  # substring of /proc/<pid>/cmdline identifying our process
    ports: list[int] = field(default_factory=list)
    env: dict[str, str] | None = None
    stop_signal: int = signal.SIGTERM


class Processes:
    def __init__(self, state: Path, repo: Path) -> None:
        self.run_dir = state / "run"
        self.log_dir = state / "logs"
        self.repo = repo
        self.started: list[str] = []  # by this process, in order: what a failed `up` stops again

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid of our running process ``name``, or None (stale pid files are removed)."""
        path = self._pid_file(name)
        try:
            pid_text, marker = path.read_text().split("\n", 1)
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        if alive(pid):
            line = cmdline(pid)
            # Mid-execve (e.g. setpriv exec'ing postgres) /proc/<pid>/cmdline reads as empty for a
            # moment: that is still our process, not a recycled pid.
            if not line or marker.strip() in line:
                return pid
        path.unlink(missing_ok=True)
        return None

    def recorded(self) -> list[str]:
        return sorted(p.stem for p in self.run_dir.glob("*.pid")) if self.run_dir.is_dir() else []

    def start(self, proc: Proc) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for port in proc.ports:
            if not port_free(port):
                raise StackError(f"port {port} (for {proc.name}) is in use by a process this stack did not start")
        with open(self.log_path(proc.name), "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(proc.argv)}\n".encode())
            log.flush()
            pid = daemonize(proc.argv, log.fileno(), cwd=self.repo, env=proc.env)
        self._pid_file(proc.name).write_text(f"{pid}\n{proc.marker}\n")
        self.started.append(proc.name)
        return pid

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> str:
        """Stop ``name`` (signal, then SIGKILL to its whole group after ``timeout``)."""
        pid = self.pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return "not running"
        os.kill(pid, sig)
        outcome = "stopped"
        if not wait_for(lambda: not alive(pid), timeout):
            outcome = f"killed (did not exit within {timeout:.0f}s of {signal.Signals(sig).name})"
        # Leftovers in the group (e.g. children of a killed leader) get SIGKILL too.
        for member in [pid, *group_members(pid)]:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not alive(pid) and not group_members(pid), 5.0)
        self._pid_file(name).unlink(missing_ok=True)
        return outcome

    def wait_ready(self, name: str, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``check`` until true; fail early, with the log's tail, if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid(name) is None:
                print(self.tail(name), file=sys.stderr)
                raise StackError(f"{name} exited during start-up (log: {self.log_path(name)})")
            if check():
                return
            time.sleep(0.2)
        print(self.tail(name), file=sys.stderr)
        raise StackError(f"{name} did not become ready ({what}) within {timeout:.0f}s (log: {self.log_path(name)})")

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.log_path(name)
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"(no log at {path})"
        return f"--- last lines of {path} ---\n" + "\n".join(text)


def daemonize(argv: list[str], log_fd: int, cwd: Path, env: dict[str, str] | None) -> int:
    """Start ``argv`` detached (double fork, own session, parent = init); return its pid.

    Envoy sets a parent-death signal, so it must not be a child of this short-lived script:
    the grandchild execs only once the intermediate process has exited.
    """
    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:  # pragma: no cover - runs in the forked child
        try:
            os.setsid()
            me = os.getpid()
            child = os.fork()
            if child == 0:
                os.close(read_end)
                while os.getppid() == me:
                    time.sleep(0.001)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
                os.chdir(cwd)
                try:
                    os.execvpe(argv[0], argv, env if env is not None else os.environ)
                except OSError as exc:
                    os.write(2, f"cannot exec {argv[0]}: {exc}\n".encode())
                    os._exit(127)
            os.write(write_end, str(child).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(intermediate, 0)
    with os.fdopen(read_end) as r:
        return int(r.read())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (other than the leader)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def port_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
