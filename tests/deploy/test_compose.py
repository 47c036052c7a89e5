"""docker-compose.yml: Compose Specification schema (offline) and the suite's own rules."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import subprocess

import jsonschema
import pytest
import yaml

from .conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
GRPC_SERVICES = {"ingest": 50051, "query": 50052, "session": 50053, "energy": 50054}
# Images with no shell or HTTP client, which therefore cannot carry a container healthcheck.
# Nothing may wait on their health (checked below).
NO_HEALTHCHECK_POSSIBLE = {"otel-collector": "distroless otel/opentelemetry-collector-contrib"}
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    # The Compose Specification schema as vendored by check-jsonschema (PyPI), which keeps it
    # current and ships it inside the wheel: available offline, nothing copied into this repo.
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
            / "compose-spec.json").read_text()
    return json.loads(text)


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_validates_against_the_compose_spec(compose, schema):
    errors = sorted(_validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("mutate", [
    lambda c: c["services"]["ingest"]["depends_on"]["session"].update(condition="service_ready"),
    lambda c: c["services"]["redis"].update(restart_policy="always"),
    lambda c: c["services"]["gateway"]["healthcheck"].update(interval=10),
])
def test_schema_rejects_broken_compose(compose, schema, mutate):
    """Guard for the guard: the schema really is enforcing (unknown keys, bad enums, types)."""
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert list(_validator(schema).iter_errors(broken))


def _one_shot(compose, name) -> bool:
    return any(dep.get("condition") == "service_completed_successfully"
               for svc in compose["services"].values()
               for dep_name, dep in (svc.get("depends_on") or {}).items() if dep_name == name)


def test_every_service_has_a_healthcheck(compose):
    for name, svc in compose["services"].items():
        hc = svc.get("healthcheck")
        if name in NO_HEALTHCHECK_POSSIBLE:
            assert hc is None
            continue
        if hc and hc.get("disable"):
            assert svc.get("restart") == "no" and _one_shot(compose, name), \
                f"{name}: only one-shot jobs may disable their healthcheck"
            continue
        assert hc and hc.get("test"), f"{name} has no healthcheck"


def test_grpc_services_check_grpc_health_on_their_port(compose):
    for name, port in GRPC_SERVICES.items():
        svc = compose["services"][name]
        assert svc["healthcheck"]["test"] == [
            "CMD", "python", "-m", "services.runtime.healthcheck", "--addr", f"localhost:{port}"], name
        assert svc["environment"]["GRPC_PORT"] == str(port)
        assert svc["build"]["target"] == name


def test_store_healthchecks_use_the_stores_own_clients(compose):
    s = compose["services"]
    assert s["timescaledb"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert s["energy-postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "redis-cli" in " ".join(s["redis"]["healthcheck"]["test"]) and "PONG" in " ".join(s["redis"]["healthcheck"]["test"])
    assert "influx " in " ".join(s["influxdb"]["healthcheck"]["test"])
    assert "/ready" in " ".join(s["gateway"]["healthcheck"]["test"])


def test_startup_ordering_waits_on_health(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            c = cond["condition"]
            if c == "service_healthy":
                hc = services[dep].get("healthcheck") or {}
                assert hc.get("test") and not hc.get("disable"), f"{name} waits on {dep}, which has no healthcheck"
            elif c == "service_started":
                assert dep in NO_HEALTHCHECK_POSSIBLE, f"{name} -> {dep}: wait for health, not start"
    expected = {
        "ingest": {"timescaledb", "ingest-migrate", "session"},
        "query": {"timescaledb", "ingest-migrate"},
        "session": {"redis"},
        "energy": {"energy-postgres", "influxdb", "energy-migrate", "session"},
        "gateway": set(GRPC_SERVICES),
    }
    for name, deps in expected.items():
        assert deps <= set(services[name]["depends_on"]), name


# One-shot jobs that must run as root, with exactly these capabilities (and nothing else of root's).
ROOT_ONE_SHOTS = {"gateway-tls": {"CHOWN", "DAC_OVERRIDE", "FOWNER"}}  # hands the host's TLS files to uid 10001


def test_our_containers_are_non_root_and_read_only(compose):
    for name, svc in compose["services"].items():
        if "build" not in svc and name not in ("otel-collector", "jaeger"):
            continue  # official store images (documented in the file)
        if name in ROOT_ONE_SHOTS:
            assert svc.get("user") == "0:0" and set(svc.get("cap_add", [])) == ROOT_ONE_SHOTS[name], name
            assert svc.get("restart") == "no" and _one_shot(compose, name) and not svc.get("ports"), name
            assert svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"], name
            assert "no-new-privileges:true" in svc.get("security_opt", []), name
            continue
        assert not svc.get("cap_add"), name
        assert svc.get("user") == "10001:10001", name
        assert svc.get("read_only") is True, name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def test_build_targets_exist_in_the_dockerfile(compose):
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M | re.I))
    for name, svc in compose["services"].items():
        if "build" in svc:
            assert svc["build"]["target"] in stages, name
            assert svc["build"].get("context", ".") == "."


def _walk_strings(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_strings(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_strings(v, path + (str(i),))
    elif isinstance(node, str):
        yield path, node


SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|REQUIREPASS", re.I)
URL_USERINFO = re.compile(r"://([^:/@\s]*):([^@\s]*)@")


def test_no_literal_secrets(compose):
    for path, value in _walk_strings(compose):
        key = path[-1]
        if SECRET_KEY.search(key) and path[-2] == "environment":
            assert VAR.fullmatch(value), f"{'/'.join(path)} must be a ${{VAR}} reference, got {value!r}"
        for m in URL_USERINFO.finditer(value):
            assert VAR.fullmatch(m.group(2)), f"{'/'.join(path)}: password in URL must be ${{VAR}}"
        assert "change-me" not in value, f"{'/'.join(path)}: placeholder from .env.example"
    redis_cmd = " ".join(compose["services"]["redis"]["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in redis_cmd


def _env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def test_env_example_matches_compose_variables(compose):
    refs = [m for _, v in _walk_strings(compose) for m in VAR.finditer(v)]
    used = {m.group(1) for m in refs}
    required = {m.group(1) for m in refs if m.group(2) in (None, ":?", "?")}
    example = _env_example()
    assert required <= set(example), f"required by compose, missing from .env.example: {required - set(example)}"
    assert set(example) <= used, f"in .env.example but unused: {set(example) - used}"
    for k, v in example.items():
        if SECRET_KEY.search(k):
            assert v.startswith("change-me"), f".env.example {k} must be an obvious placeholder"


def test_dotenv_is_git_ignored():
    try:
        out = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, capture_output=True)
    except FileNotFoundError:
        pytest.skip("git not installed")
    if out.returncode == 128:
        pytest.skip("not a git work tree")
    assert out.returncode == 0, ".env must be listed in .gitignore"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=REPO, capture_output=True)
    assert tracked.returncode != 0, ".env is tracked by git"


def test_gateway_auth_defaults_on(compose):
    assert compose["services"]["gateway"]["environment"]["GATEWAY_AUTH"] == "${GATEWAY_AUTH:-on}"
    assert _env_example()["GATEWAY_AUTH"] == "on"


def test_redis_is_durable_and_never_evicts_state(compose):
    cmd = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in cmd and "--appendfsync everysec" in cmd
    policy = re.search(r"--maxmemory-policy (\S+)", cmd).group(1)
    # allkeys-* would evict bans; sessions carry TTLs, so volatile-* would evict them too.
    assert policy == "noeviction"


def test_only_gateway_and_operator_uis_are_published(compose):
    published = {n: s["ports"] for n, s in compose["services"].items() if s.get("ports")}
    assert set(published) == {"gateway", "jaeger", "prometheus", "grafana"}
    for ui in ("jaeger", "prometheus", "grafana"):  # loopback only
        assert all(p.startswith("127.0.0.1:") for p in published[ui]), ui
    assert compose["networks"]["backend"]["internal"] is True
    for name, svc in compose["services"].items():
        assert "backend" in svc["networks"], name
        if name not in ("gateway", "jaeger", "prometheus", "grafana"):
            assert svc["networks"] == ["backend"], name


def _git_ignored(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0


def test_bind_mounts_exist(compose):
    """Committed sources exist; a source the operator provides (``${VAR:-./default}``, such as
    minted certificates) defaults to a git-ignored path, and compose must not create it when absent."""
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            if isinstance(vol, str):
                src = vol.split(":", 1)[0]
            elif vol["type"] == "bind":
                src = vol["source"]
                if m := VAR.fullmatch(src):
                    assert m.group(2) == ":-" and _git_ignored(m.group(3)), f"{name}: {src} must default to a git-ignored path"
                    assert vol["bind"]["create_host_path"] is False and vol["read_only"] is True, name
                    continue
            else:
                continue
            if src.startswith("./"):
                assert (REPO / src).exists(), f"{name}: {src} missing"


def _mounts(svc: dict) -> dict[str, dict]:
    """target → long-syntax mount (short syntax strings are not used for these)."""
    return {v["target"]: v for v in svc.get("volumes", []) if isinstance(v, dict)}


def test_the_gateway_serves_mtls_with_the_minted_certificates_mounted(compose, tmp_path):
    """The compose render's mTLS listener, the port compose publishes, the volume its files are on,
    the job that fills it, and what deploy/tls/certs.py writes all agree."""
    from tests.harness.paths import envoy_render, load_script

    render = envoy_render()
    config = yaml.safe_load(render.COMMITTED["compose"].read_text())
    (mtls,) = [lst for lst in config["static_resources"]["listeners"] if lst["name"] == "gateway_mtls"]
    port = mtls["address"]["socket_address"]["port_value"]
    tls = mtls["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    context = tls["common_tls_context"]
    files = [context["validation_context"]["trusted_ca"]["filename"],
             context["tls_certificates"][0]["certificate_chain"]["filename"],
             context["tls_certificates"][0]["private_key"]["filename"]]
    directory = render.TARGETS["compose"]["mtls_dir"]
    assert {f.rpartition("/")[0] for f in files} == {directory}

    services = compose["services"]
    gateway, job = services["gateway"], services["gateway-tls"]
    assert f"{port}:{port}" in gateway["ports"]
    mount = _mounts(gateway)[directory]
    assert mount["type"] == "volume" and mount["read_only"] is True
    assert gateway["depends_on"]["gateway-tls"]["condition"] == "service_completed_successfully"
    # The job installs exactly those files, owned by the gateway's user, into the same volume.
    assert _mounts(job)[directory] == {"type": "volume", "source": mount["source"], "target": directory}
    assert mount["source"] in compose["volumes"]
    entry = job["entrypoint"]
    assert entry[:8] == ["install", "-o", "10001", "-g", "10001", "-m", "0400", "-t"] and entry[8] == directory
    host = _mounts(job)[entry[9].rpartition("/")[0]]
    assert host["type"] == "bind"
    names = [f.rpartition("/")[2] for f in files]
    assert entry[9:] == [f"{host['target']}/{n}" for n in names]
    assert job["image"] == gateway["image"] and job["build"] == gateway["build"]

    # ... which are the names deploy/tls/certs.py writes (the command the comments give).
    certs = load_script("deploy/tls/certs.py", "banhammer_tls_certs")
    assert certs.main(["--out", str(tmp_path), "--client", "game/eu-1"]) == 0
    assert all((tmp_path / n).is_file() for n in names)
    default_dir = VAR.fullmatch(host["source"]).group(3)
    assert f"certs.py --out {default_dir.removeprefix('./')}" in COMPOSE.read_text()
