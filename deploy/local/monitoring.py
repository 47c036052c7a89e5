"""The local stack's Prometheus (Debian package `prometheus`): scrapes every service and Envoy, and
evaluates deploy/prometheus/rules. Its config is rendered by deploy/prometheus/generate.py, the same
code that writes compose's."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from processes import Proc, Processes, StackError

REPO = Path(__file__).resolve().parents[2]
GENERATE = REPO / "deploy" / "prometheus" / "generate.py"


def _generate():
    # Loaded by path: deploy/envoy/render.py already owns the module name `render` here.
    spec = importlib.util.spec_from_file_location("banhammer_prometheus_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Prometheus:
    def __init__(self, conf, state: Path, procs: Processes, services: tuple[str, ...]) -> None:
        self.conf = conf
        self.root = state / "prometheus"
        self.procs = procs
        self.services = services

    def preflight(self) -> None:
        if not shutil.which(self.conf.prometheus_bin):
            raise StackError(f"{self.conf.prometheus_bin} not found; install it: apt-get install prometheus "
                             "(or set LOCAL_PROMETHEUS_BIN)")

    def metrics_urls(self) -> list[tuple[int, str]]:
        return [*((self.conf.metrics_port(name), "/metrics") for name in self.services),
                (self.conf.envoy_stats_port, "/stats/prometheus")]

    def config(self) -> str:
        c = self.conf
        return _generate().prometheus_config(
            {name: f"127.0.0.1:{c.metrics_port(name)}" for name in self.services},
            f"127.0.0.1:{c.envoy_stats_port}", [str(GENERATE.parent / "rules" / "*.yml")],
            interval="5s")  # short, so a developer (and the end-to-end test) sees a call within seconds

    def up(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        text = self.config()
        if config.exists() and config.read_text() != text and self.procs.pid("prometheus"):
            print("prometheus: configuration changed, restarting")
            self.procs.stop("prometheus")
        config.write_text(text)
        port = self.conf.prometheus_port
        if self.procs.pid("prometheus") is None:
            argv = [shutil.which(self.conf.prometheus_bin) or self.conf.prometheus_bin,
                    f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
                    "--storage.tsdb.retention.time=2d", f"--web.listen-address=127.0.0.1:{port}"]
            self.procs.start(Proc("prometheus", argv, marker=str(config), ports=[port]))
        self.procs.wait_ready("prometheus", lambda: _http_ok(port, "/-/ready"), 30,
                              f"GET http://127.0.0.1:{port}/-/ready")


def _http_ok(port: int, path: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
