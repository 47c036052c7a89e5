"""Monitoring as shipped: the rules (promtool check + unit tests), the generated Prometheus configs and
PrometheusRule, the Grafana dashboards (every query parsed by promtool), compose and Kubernetes wiring.
That every metric the dashboards and rules name exists in a real scrape: tests/e2e/test_observability.py."""

from __future__ import annotations

import importlib
import shutil
import subprocess

import yaml

from tests.harness.paths import load_script
from tests.harness.promql import DASHBOARDS, RULES, dashboard_queries, dashboards, metric_names, panels, rule_expressions
from tests.harness.require import missing

from .conftest import BASE, K8S, REPO, load_docs

generate = load_script("deploy/prometheus/generate.py", "banhammer_prometheus_generate")
MONITORING = K8S / "components" / "monitoring"
SERVICES = ("ingest", "query", "session", "energy")


def promtool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    if not shutil.which("promtool"):
        missing("promtool not installed: apt-get install prometheus (.ci/run does)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_check():
    done = promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_unit_tests():
    tests = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml"))
    assert tests
    done = promtool("test", "rules", *map(str, tests))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test():
    alerts = {r["alert"] for g in yaml.safe_load((RULES / "banhammer.rules.yml").read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tested = set()
    for path in (REPO / "deploy" / "prometheus" / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts and alerts == tested, f"alerts never seen firing in a unit test: {alerts - tested}"


def test_a_broken_rule_fails_the_check(tmp_path):
    """Guard for the guard: promtool really parses the expressions."""
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]}))
    assert promtool("check", "rules", str(bad)).returncode != 0


def test_every_dashboard_query_parses(tmp_path):
    """Each panel's PromQL, as a recording rule promtool parses (Grafana's $__rate_interval → 5m)."""
    queries = dashboard_queries()
    assert len(queries) > 20
    rules = [{"record": f"dashboard:query:{i}", "expr": q.replace("$__rate_interval", "5m")}
             for i, q in enumerate(queries)]
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_well_formed():
    found = dashboards()
    assert set(found) == {"gateway.json", "ingest.json", "session.json", "energy.json", "stores.json"}
    uids = [d["uid"] for d in found.values()]
    assert len(set(uids)) == len(uids)
    datasource = yaml.safe_load((REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
                                .read_text())["datasources"][0]
    for name, d in found.items():
        variable = next(v for v in d["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == datasource["uid"], name
        ids = [p["id"] for p in panels(d)]
        assert len(set(ids)) == len(ids), name
        for p in panels(d):
            assert p["title"] and p["targets"], f"{name}: panel {p['id']}"
            assert all(t["expr"] and t["datasource"]["uid"] == "${datasource}" for t in p["targets"]), name


def test_dashboards_and_rules_name_only_metrics_the_suite_exports():
    recorded = {r["record"] for g in yaml.safe_load((RULES / "banhammer.rules.yml").read_text())["groups"]
                for r in g["rules"] if "record" in r}
    names = {n for e in rule_expressions() + dashboard_queries() for n in metric_names(e)}
    foreign = {n for n in names - recorded if not n.startswith(("grpc_server_", "banhammer_", "envoy_")) and n != "up"}
    assert not foreign, foreign
    assert {"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "banhammer_gateway_decisions_total",
            "banhammer_energy_spool_bytes", "envoy_cluster_upstream_rq_total"} <= names


def test_generated_files_are_current():
    compose = REPO / "deploy" / "compose" / "prometheus" / "prometheus.yml"
    rule = MONITORING / "prometheus-rule.yaml"
    assert compose.read_text() == generate.compose_config(), "run python deploy/prometheus/generate.py --target compose"
    assert rule.read_text() == generate.k8s_prometheus_rule(), "run python deploy/prometheus/generate.py --target k8s-rules"
    assert load_docs(rule)[0]["spec"]["groups"] == yaml.safe_load((RULES / "banhammer.rules.yml").read_text())["groups"]


def test_prometheus_configs_load(tmp_path):
    """promtool check config on the local stack's config (with the real rule files) and compose's."""
    local = tmp_path / "local.yml"
    local.write_text(generate.prometheus_config({s: f"127.0.0.1:{p}" for s, p in generate.METRICS_PORTS.items()},
                                                "127.0.0.1:9902", [str(RULES / "*.yml")]))
    done = promtool("check", "config", str(local))
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    done = promtool("check", "config", "--syntax-only", str(REPO / "deploy" / "compose" / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_metrics_ports_agree_everywhere():
    """The services' declared defaults, the generator, compose's targets, the pods' ports and annotations."""
    envoy = load_script("deploy/envoy/render.py", "banhammer_envoy_render")
    compose_jobs = {j["job_name"]: j for j in yaml.safe_load(generate.compose_config())["scrape_configs"]}
    for name in SERVICES:
        port = importlib.import_module(f"services.{name}.service").SPEC.metrics_port
        assert generate.METRICS_PORTS[name] == port
        assert compose_jobs[name]["static_configs"][0]["targets"] == [f"{name}:{port}"]
        pod = load_docs(BASE / name / "deployment.yaml")[0]["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == port, name
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert envoy.DEFAULTS["stats_port"] == generate.ENVOY_STATS_PORT
    assert compose_jobs["envoy"]["static_configs"][0]["targets"] == [f"gateway:{generate.ENVOY_STATS_PORT}"]
    gateway = load_docs(BASE / "gateway" / "deployment.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "stats", "containerPort": generate.ENVOY_STATS_PORT, "protocol": "TCP"} in gateway["ports"]


def test_pod_monitors_select_the_pods_and_ports():
    docs = {d["metadata"]["name"]: d for d in load_docs(MONITORING / "podmonitors.yaml")}
    services = docs["banhammer-services"]["spec"]
    assert services["jobLabel"] == "app"
    for name in SERVICES:
        pod = load_docs(BASE / name / "deployment.yaml")[0]["spec"]["template"]
        assert services["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), name
        assert pod["metadata"]["labels"]["app"] == name  # the job label the rules select on
    assert [e["port"] for e in services["podMetricsEndpoints"]] == ["metrics"]
    gateway = docs["banhammer-gateway"]["spec"]
    assert gateway["podMetricsEndpoints"][0]["port"] == "stats"
    assert gateway["podMetricsEndpoints"][0]["relabelings"] == [{"targetLabel": "job", "replacement": "envoy"}]
    policy = load_docs(MONITORING / "network-policy.yaml")[0]
    allowed = {p["port"] for p in policy["spec"]["ingress"][0]["ports"]}
    assert allowed == {*generate.METRICS_PORTS.values(), generate.ENVOY_STATS_PORT}
    component = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert all((MONITORING / r).is_file() for r in component["resources"])


def test_compose_runs_prometheus_and_grafana_with_the_repository_files():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["prometheus"]["volumes"] if v.startswith("./")}
    assert mounts == {"/etc/prometheus/prometheus.yml": "./deploy/compose/prometheus/prometheus.yml",
                      "/etc/prometheus/rules": "./deploy/prometheus/rules"}
    grafana = {v.split(":")[1]: v.split(":")[0] for v in compose["grafana"]["volumes"] if v.startswith("./")}
    provider = yaml.safe_load((REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "banhammer.yml")
                              .read_text())["providers"][0]
    assert grafana[provider["options"]["path"]] == "./" + str(DASHBOARDS.relative_to(REPO))
    assert grafana["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
