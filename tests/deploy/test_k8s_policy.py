"""deploy/k8s policy: workload hygiene and the NetworkPolicy call graph.

Runs on the base as written (always) and on the rendered overlays (when kustomize is available),
so an overlay patch cannot quietly undo a guarantee.
"""

from __future__ import annotations

import copy

import pytest

from .conftest import OVERLAYS, base_resources, render

GRPC_SERVICES = {"ingest": 50051, "query": 50052, "session": 50053, "energy": 50054}
SECRET_ENV = {"TIMESCALEDB_URL", "QUERY_DATABASE_URL", "REDIS_URL", "ENERGY_DATABASE_URL",
              "INFLUXDB_URL", "INFLUXDB_USERNAME", "INFLUXDB_PASSWORD"}
SOURCES = ("base-as-written",) + OVERLAYS


def docs_for(source: str):
    return base_resources() if source == "base-as-written" else list(render(source))


def templates(docs):
    return [(d, d["spec"]["template"]["spec"]) for d in docs if d["kind"] in ("Deployment", "Job")]


@pytest.fixture(params=SOURCES)
def docs(request):
    return docs_for(request.param)


def test_every_pod_is_non_root_read_only_and_locked_down(docs):
    pods = templates(docs)
    assert len(pods) >= 8
    for wl, spec in pods:
        who = f"{wl['kind']}/{wl['metadata']['name']}"
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, who
        assert psc.get("runAsUser", 0) != 0, who
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", who
        assert spec.get("automountServiceAccountToken") is False, who
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in spec["containers"] + spec.get("initContainers", []):
            csc = c.get("securityContext", {})
            assert csc.get("readOnlyRootFilesystem") is True, f"{who}/{c['name']}"
            assert csc.get("allowPrivilegeEscalation") is False, f"{who}/{c['name']}"
            assert csc.get("privileged", False) is False, f"{who}/{c['name']}"
            assert "ALL" in csc.get("capabilities", {}).get("drop", []), f"{who}/{c['name']}"
            assert not csc.get("capabilities", {}).get("add"), f"{who}/{c['name']}"
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{who}/{c['name']}: /tmp must be an emptyDir"


def test_every_container_has_requests_and_limits(docs):
    for wl, spec in templates(docs):
        for c in spec["containers"]:
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{wl['metadata']['name']}/{c['name']} {kind}"


def test_every_long_running_container_has_probes(docs):
    for wl, spec in templates(docs):
        if wl["kind"] != "Deployment":
            continue
        for c in spec["containers"]:
            assert "readinessProbe" in c and "livenessProbe" in c, f"{wl['metadata']['name']}/{c['name']}"


def test_grpc_services_use_native_grpc_probes_on_their_port(docs):
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name, port in GRPC_SERVICES.items():
        c = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["grpc"]["port"] == port, name
        assert c["livenessProbe"]["grpc"]["port"] == port, name
        assert {"name": "grpc", "containerPort": port, "protocol": "TCP"} in c["ports"], name
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env["GRPC_PORT"] == str(port), name
        svc_ports = services[name]["spec"]["ports"]
        assert [(p["port"], p["targetPort"]) for p in svc_ports] == [(port, "grpc")], name
        assert services[name]["spec"]["selector"] == {"app": name}


def test_store_credentials_come_from_secret_refs(docs):
    seen = set()
    for wl, spec in templates(docs):
        for c in spec["containers"]:
            for e in c.get("env", []):
                if e["name"] in SECRET_ENV:
                    seen.add(e["name"])
                    assert "value" not in e, f"{wl['metadata']['name']}: {e['name']} must not be inline"
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{wl['metadata']['name']}: {e['name']}"
                elif "value" in e:
                    assert "@" not in str(e["value"]), f"{e['name']} looks like a URL with credentials"
    assert seen == SECRET_ENV
    for d in docs:
        if d["kind"] == "ConfigMap":
            for k, v in d.get("data", {}).items():
                assert not any(s in k.upper() for s in ("PASSWORD", "SECRET", "TOKEN")), k
                assert "://" not in v or "@" not in v.split("://", 1)[1].split("/", 1)[0], k


def test_hpas_own_the_replica_count_of_ingest_and_query(docs):
    hpas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == {"ingest", "query"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", name)
        assert "replicas" not in deployments[name]["spec"], f"{name}: the HPA owns replicas"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_every_deployment_has_a_matching_pdb(docs):
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for wl in (d for d in docs if d["kind"] == "Deployment"):
        labels = wl["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert matching, f"no PodDisruptionBudget for {wl['metadata']['name']}"


def test_workload_selectors_do_not_capture_migration_pods(docs):
    jobs = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] == "Job"]
    assert jobs
    for d in docs:
        if d["kind"] in ("Service", "PodDisruptionBudget", "Deployment"):
            sel = d["spec"]["selector"]
            sel = sel.get("matchLabels", sel)
            for labels in jobs:
                assert not sel.items() <= labels.items(), f"{d['kind']}/{d['metadata']['name']} selects a Job pod"


def test_images_are_tagged_and_not_latest(docs):
    for wl, spec in templates(docs):
        for c in spec["containers"]:
            assert ":" in c["image"] and not c["image"].endswith(":latest"), c["image"]


def test_namespace_enforces_restricted_pod_security():
    ns = [d for d in base_resources() if d["kind"] == "Namespace"][0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---------------------------------------------------------------- NetworkPolicy graph

NAMESPACE_LABELS = {"kubernetes.io/metadata.name": "banhammer"}
KUBE_DNS = ({"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
EXTERNAL = None  # a destination outside the cluster (managed store, trace backend)


def _selects(selector: dict, labels: dict) -> bool:
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        op, key, values = expr["operator"], expr["key"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, pod) -> bool:
    """pod: (labels, namespace labels) for a pod, or EXTERNAL."""
    if pod is EXTERNAL:
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return False
    labels, ns_labels = pod
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], ns_labels):
            return False
    elif ns_labels != NAMESPACE_LABELS:
        return False  # a bare podSelector means "in the policy's own namespace"
    return _selects(peer.get("podSelector", {}), labels)


def _port_matches(rule_ports, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    return any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in rule_ports)


def _allowed(policies, direction: str, subject: dict, peer, port: int, protocol="TCP") -> bool:
    """Is `subject` (pod labels in our namespace) allowed this ingress/egress with `peer`?"""
    kind, key, peers_key = ("Egress", "egress", "to") if direction == "egress" else ("Ingress", "ingress", "from")
    selecting = [p for p in policies if _selects(p["spec"]["podSelector"], subject)
                 and kind in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True  # not isolated
    for pol in selecting:
        for rule in pol["spec"].get(key, []):
            peers = rule.get(peers_key)
            if (peers is None or any(_peer_matches(pr, peer) for pr in peers)) and \
                    _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def _pod_labels(docs) -> dict[str, dict]:
    return {wl["spec"]["template"]["metadata"]["labels"]["app"]: wl["spec"]["template"]["metadata"]["labels"]
            for wl in docs if wl["kind"] in ("Deployment", "Job")}


def _flow(policies, pods, src: str, dst: str, port: int) -> bool:
    return (_allowed(policies, "egress", pods[src], (pods[dst], NAMESPACE_LABELS), port)
            and _allowed(policies, "ingress", pods[dst], (pods[src], NAMESPACE_LABELS), port))


ALLOWED_CALLS = {("gateway", "ingest"), ("gateway", "query"), ("gateway", "session"),
                 ("gateway", "energy"), ("ingest", "session"), ("energy", "session")}
STORE_OWNERS = {5432: {"ingest", "ingest-migrate", "query", "energy", "energy-migrate"},
                6379: {"session"}, 8086: {"energy"}}


@pytest.fixture(params=SOURCES)
def net(request):
    docs = docs_for(request.param)
    return [d for d in docs if d["kind"] == "NetworkPolicy"], _pod_labels(docs)


def test_only_the_gateway_and_session_callers_reach_grpc_ports(net):
    policies, pods = net
    assert set(GRPC_SERVICES) | {"gateway", "otel-collector", "ingest-migrate", "energy-migrate"} <= set(pods)
    for src in pods:
        for dst, port in GRPC_SERVICES.items():
            if src == dst:
                continue
            expected = (src, dst) in ALLOWED_CALLS
            assert _flow(policies, pods, src, dst, port) is expected, f"{src} -> {dst}:{port}"
            # Allowed callers reach only the service's own port.
            other = next(p for n, p in GRPC_SERVICES.items() if n != dst)
            assert not _flow(policies, pods, src, dst, other), f"{src} -> {dst}:{other}"


def test_outside_clients_reach_only_the_gateway(net):
    policies, pods = net
    assert _allowed(policies, "ingress", pods["gateway"], EXTERNAL, 8000)
    assert not _allowed(policies, "ingress", pods["gateway"], EXTERNAL, 9901)  # admin stays inside
    for name, port in GRPC_SERVICES.items():
        assert not _allowed(policies, "ingress", pods[name], EXTERNAL, port), name
        assert not _allowed(policies, "ingress", pods[name], ({"app": "intruder"}, NAMESPACE_LABELS), port)


def test_only_store_owners_reach_store_ports(net):
    policies, pods = net
    for port, owners in STORE_OWNERS.items():
        for name in pods:
            allowed = _allowed(policies, "egress", pods[name], EXTERNAL, port)
            assert allowed is (name in owners), f"{name} -> store port {port}"


def test_every_pod_reaches_dns_and_the_collector(net):
    policies, pods = net
    for name, labels in pods.items():
        assert _allowed(policies, "egress", labels, KUBE_DNS, 53, "UDP"), name
        assert _allowed(policies, "egress", labels, KUBE_DNS, 53, "TCP"), name
        if name != "otel-collector":
            assert _flow(policies, pods, name, "otel-collector", 4317), name
        # Nothing may reach arbitrary outside addresses on other ports (e.g. HTTPS).
        assert not _allowed(policies, "egress", labels, EXTERNAL, 443), name


def test_graph_check_detects_a_missing_default_deny(net):
    """Guard for the guard: dropping default-deny must open flows the tests above forbid."""
    policies, pods = net
    weakened = [p for p in copy.deepcopy(policies) if p["metadata"]["name"] != "default-deny-all"]
    assert len(weakened) == len(policies) - 1
    assert _flow(weakened, pods, "gateway", "otel-collector", 4317)
    # The gateway is selected by its own policy, so it stays isolated; migrations are not.
    assert not _allowed(policies, "ingress", pods["ingest-migrate"], EXTERNAL, 1234)
    assert _allowed(weakened, "ingress", pods["ingest-migrate"], EXTERNAL, 1234)
