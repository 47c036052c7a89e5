"""The local stack with its Prometheus: every service and Envoy is scraped, RPC counters rise for exactly
the RPCs driven through the gateway, histograms exist, and every metric the dashboards and the alert
rules name exists in the real scrape."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.harness.fixtures import require_generated_code
from tests.harness.local_stack import require_stack_tools, stack, stack_env
from tests.harness.paths import REPO
from tests.harness.promql import dashboard_queries, metric_names, rule_expressions

JOBS = ("ingest", "query", "session", "energy", "envoy")
HANDLED = 'sum by (job, grpc_service, grpc_method) (grpc_server_handled_total{grpc_service!="grpc.health.v1.Health"})'
#: What the test drives through the gateway: (HTTP method, path, JSON body) → (job, service, method), times.
CALLS = [
    (("POST", "/api/ts/action", {"player_id": "obs_player_1", "action_type": "login", "value": 1.0}),
     ("ingest", "banhammer.ingest.v1.IngestService", "RecordAction"), 3),
    (("GET", "/api/ts/stats/overview", None), ("query", "banhammer.query.v1.QueryService", "GetStatsOverview"), 2),
    (("POST", "/banhammer.session.v1.BanService/IsBanned", {"subject": "obs_player_1"}),
     ("session", "banhammer.session.v1.BanService", "IsBanned"), 2),
    (("POST", "/banhammer.energy.v1.BuildingService/ListBuildings", {}),
     ("energy", "banhammer.energy.v1.BuildingService", "ListBuildings"), 1),
]


class Prom:
    def __init__(self, port: str) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        return self.get("/api/v1/query", query=promql)["result"]

    def vector(self, promql: str, *keys: str) -> dict[tuple, float]:
        return {tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1]) for r in self.query(promql)}

    def wait(self, what: str, predicate, timeout: float = 60.0):
        """Poll ``predicate()`` (returning a truthy value when done) until a deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)


def _call(gateway: str, method: str, path: str, body: dict | None) -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{gateway}{path}", data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    require_generated_code()
    require_stack_tools()
    env = stack_env(tmp_path_factory.mktemp("obs") / "stack")
    try:
        up = stack(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield env, up.stdout
    finally:
        down = stack(env, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def test_up_prints_prometheus_and_every_metrics_url(running_stack):
    env, out = running_stack
    assert f"http://127.0.0.1:{env['LOCAL_PROMETHEUS_PORT']}" in out
    for var in ("LOCAL_INGEST_METRICS_PORT", "LOCAL_QUERY_METRICS_PORT", "LOCAL_SESSION_METRICS_PORT",
                "LOCAL_ENERGY_METRICS_PORT"):
        assert f"http://127.0.0.1:{env[var]}/metrics" in out, out
    assert f"http://127.0.0.1:{env['LOCAL_ENVOY_STATS_PORT']}/stats/prometheus" in out


def test_prometheus_scrapes_everything_and_counts_exactly_the_rpcs_called(running_stack):
    env, _ = running_stack
    prom = Prom(env["LOCAL_PROMETHEUS_PORT"])
    prom.wait("every target up", lambda: all(prom.vector(f'up{{job="{job}"}}', "job").get((job,)) == 1
                                                 for job in JOBS))
    # A baseline taken after a scrape has happened (Prometheus has the series of every job).
    before = prom.vector(HANDLED, "job", "grpc_service", "grpc_method")
    gateway = f"http://127.0.0.1:{env['LOCAL_ENVOY_PORT']}"
    for (method, path, body), _, times in CALLS:
        for _ in range(times):
            assert _call(gateway, method, path, body) == 200

    def rose():
        now = prom.vector(HANDLED, "job", "grpc_service", "grpc_method")
        delta = {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}
        return delta if all(delta.get(key, 0) >= times for _, key, times in CALLS) else None

    delta = prom.wait("the counters of the RPCs called", rose)
    assert delta == {key: float(times) for _, key, times in CALLS}
    for _, (job, service, method), times in CALLS:
        selector = f'job="{job}", grpc_service="{service}", grpc_method="{method}"'
        buckets = prom.query(f"grpc_server_handling_seconds_bucket{{{selector}}}")
        assert len(buckets) >= 10, buckets  # a histogram: one series per bucket
        assert prom.vector(f"grpc_server_handled_total{{{selector}, grpc_code='OK'}}", "job")
    # Store timings: the query service's statements, the session store's Redis calls.
    assert prom.query('banhammer_store_operation_seconds_count{job="query"}')
    assert prom.query('banhammer_store_operation_seconds_count{job="session", store="session store"}')
    # Envoy's own stats came through its stats listener.
    assert prom.query('envoy_cluster_upstream_rq_total{job="envoy", envoy_cluster_name="ingest"}')


def test_every_metric_in_dashboards_and_rules_exists_in_a_real_scrape(running_stack):
    env, _ = running_stack
    prom = Prom(env["LOCAL_PROMETHEUS_PORT"])
    expressions = rule_expressions() + dashboard_queries()
    assert len(expressions) > 20
    recorded = {r["record"] for g in _rules()["groups"] for r in g["rules"] if "record" in r}
    wanted = {name for e in expressions for name in metric_names(e)} - recorded
    prom.wait("every target up", lambda: all(prom.vector(f'up{{job="{job}"}}', "job").get((job,)) == 1
                                                 for job in JOBS))
    known = set(prom.get("/api/v1/label/__name__/values"))
    assert wanted - known == set(), f"named in dashboards or rules but never scraped: {sorted(wanted - known)}"
    for expr in expressions:  # Prometheus's own parser: a query that does not parse is a 400
        prom.query(expr.replace("$__rate_interval", "5m").replace("$job", "ingest"))


def _rules() -> dict:
    import yaml

    return yaml.safe_load(Path(REPO / "deploy" / "prometheus" / "rules" / "banhammer.rules.yml").read_text())


def test_doctor_passes_on_the_local_stack(running_stack):
    """`make doctor`'s path: the stack's `env` exports, then `python -m ops doctor`."""
    import subprocess
    import sys

    env, _ = running_stack
    exports = stack(env, "env")
    assert exports.returncode == 0, exports.stderr
    ops_env = dict(env)
    for line in exports.stdout.splitlines():
        var, _, value = line.removeprefix("export ").partition("=")
        ops_env[var] = value
    done = subprocess.run([sys.executable, "-m", "ops", "doctor"], env=ops_env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("all ")
