"""deploy/k8s: schema validation (kubernetes-validate, strict) and the kustomize structure."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from .conftest import BASE, K8S, K8S_VERSION, OVERLAYS, kustomization, load_docs, render

# Files under deploy/k8s that are not Kubernetes objects.
NOT_MANIFESTS = {
    BASE / "gateway" / "envoy.yaml",  # Envoy config (rendered by deploy/envoy/render.py)
    BASE / "otel-collector" / "collector.yaml",  # collector config
}


def _kustomization_dirs():
    return [BASE] + [K8S / "overlays" / o for o in OVERLAYS]


def _patch_files() -> set:
    out = set()
    for d in _kustomization_dirs():
        for p in kustomization(d).get("patches", []):
            if "path" in p:
                out.add((d / p["path"]).resolve())
    return out


def _manifest_files():
    patches = _patch_files()
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path in NOT_MANIFESTS or path.resolve() in patches:
            continue
        yield path


#: Custom resources kubernetes-validate has no schema for; tests/deploy/test_monitoring.py checks them.
CUSTOM_RESOURCE_GROUPS = ("monitoring.coreos.com/",)


def _validate(doc: dict) -> None:
    if doc.get("apiVersion", "").startswith(CUSTOM_RESOURCE_GROUPS):
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        pytest.fail(f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {e.message} at {where}")


def test_kubernetes_validate_ships_the_target_version():
    # validate() silently falls back to an older schema set for versions it lacks; pin the intent.
    assert K8S_VERSION in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("path", list(_manifest_files()), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_file_validates_strict(path):
    docs = load_docs(path)
    assert docs, f"{path} holds no object"
    for doc in docs:
        _validate(doc)


def test_strict_validation_rejects_unknown_fields():
    """Guard for the guard: a typo'd field must fail, or the test above proves nothing."""
    doc = load_docs(BASE / "ingest" / "deployment.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kdir", _kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_references_existing_files(kdir):
    k = kustomization(kdir)
    missing = []
    for rel in k.get("resources", []):
        if not (kdir / rel).exists():
            missing.append(rel)
    for p in k.get("patches", []):
        if "path" in p and not (kdir / p["path"]).is_file():
            missing.append(p["path"])
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for f in gen.get("files", []):
            if not (kdir / f.split("=", 1)[-1]).is_file():
                missing.append(f)
    assert not missing, f"{kdir}: referenced but missing: {missing}"


def test_every_base_manifest_is_listed():
    """A manifest file the kustomization forgets is never deployed."""
    listed = {(BASE / r).resolve() for r in kustomization(BASE)["resources"]}
    gen_files = {(BASE / f.split("=", 1)[-1]).resolve()
                 for g in kustomization(BASE).get("configMapGenerator", []) for f in g.get("files", [])}
    orphans = [str(p.relative_to(BASE)) for p in BASE.rglob("*.yaml")
               if p.name != "kustomization.yaml" and p.resolve() not in listed | gen_files]
    assert not orphans, f"not referenced by base/kustomization.yaml: {orphans}"


def test_no_secret_objects_or_generators_committed():
    for d in _kustomization_dirs():
        assert "secretGenerator" not in kustomization(d), f"{d}: secrets must not be generated from the repo"
    for path in _manifest_files():
        for doc in load_docs(path):
            assert doc["kind"] != "Secret", f"{path}: Secret objects must not be committed"


def _base_objects():
    objs = []
    for rel in kustomization(BASE)["resources"]:
        objs.extend(load_docs(BASE / rel))
    return objs


def _matches_target(obj: dict, target: dict) -> bool:
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
        return False
    if "labelSelector" in target:
        labels = obj["metadata"].get("labels", {})
        for term in target["labelSelector"].split(","):
            key, value = term.split("=")
            if labels.get(key) != value:
                return False
    return True


def _json_pointer_parent_exists(obj: dict, pointer: str) -> bool:
    node = obj
    parts = pointer.lstrip("/").split("/")
    for part in parts[:-1]:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return False
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_patches_target_existing_base_resources(overlay):
    odir = K8S / "overlays" / overlay
    k = kustomization(odir)
    assert k["resources"] == ["../../base"], "overlays build on the base"
    base = _base_objects()
    for p in k.get("patches", []):
        body = yaml.safe_load((odir / p["path"]).read_text())
        if "target" in p:
            targets = [o for o in base if _matches_target(o, p["target"])]
            assert targets, f"{overlay}: patch {p['path']} matches no base resource ({p['target']})"
            if isinstance(body, list):  # JSON 6902: every op's parent path must exist
                for obj in targets:
                    for op in body:
                        if op["op"] == "replace":
                            assert _json_pointer_parent_exists(obj, op["path"]), \
                                f"{p['path']}: {op['path']} not in {obj['kind']}/{obj['metadata']['name']}"
        else:  # strategic merge: a base object with the same kind and name
            assert any(o["kind"] == body["kind"] and o["metadata"]["name"] == body["metadata"]["name"]
                       for o in base), f"{overlay}: {p['path']} patches a resource the base lacks"
    base_generators = {g["name"] for g in kustomization(BASE).get("configMapGenerator", [])}
    for g in k.get("configMapGenerator", []):
        if g.get("behavior") in ("merge", "replace"):
            assert g["name"] in base_generators, f"{overlay}: merges into unknown ConfigMap {g['name']}"
    image_names = {c["image"].split(":")[0] for o in base if o["kind"] in ("Deployment", "Job")
                   for c in o["spec"]["template"]["spec"]["containers"]}
    for img in k.get("images", []):
        assert img["name"] in image_names, f"{overlay}: image override for unused image {img['name']}"


# ---------------------------------------------------------------- rendered (needs kustomize)

@pytest.mark.parametrize("target", ("base",) + OVERLAYS)
def test_rendered_resources_validate_strict(target):
    docs = render(target)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "Job", "ServiceAccount"} <= kinds
    for doc in docs:
        _validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "banhammer", f"{doc['kind']}/{doc['metadata']['name']}"


def _by(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert found, f"{kind}/{name} missing"
    return found[0]


def _config(docs) -> dict:
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("banhammer-config")]
    assert len(cms) == 1
    return cms[0]["data"]


def test_dev_overlay_is_small_and_verbose():
    docs = render("dev")
    assert _config(docs)["LOG_LEVEL"] == "debug"
    for name in ("session", "energy", "gateway", "otel-collector"):
        assert _by(docs, "Deployment", name)["spec"]["replicas"] == 1, name
    for name in ("ingest", "query"):
        hpa = _by(docs, "HorizontalPodAutoscaler", name)["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)
    base_cpu = _by(render("base"), "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]["resources"]
    dev_cpu = _by(docs, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert dev_cpu != base_cpu and dev_cpu["requests"]["cpu"] == "50m"
    assert all(c["image"].endswith(":dev") for _, s in _templates(docs) for c in s["containers"]
               if c["image"].startswith("banhammer/"))


def test_prod_overlay_is_replicated_and_exposed():
    docs = render("prod")
    assert _config(docs)["LOG_LEVEL"] == "info"
    assert _config(docs)["GATEWAY_AUTH"] == "on"
    for name in ("session", "energy", "gateway"):
        assert _by(docs, "Deployment", name)["spec"]["replicas"] >= 3, name
    ingest = _by(docs, "HorizontalPodAutoscaler", "ingest")["spec"]
    query = _by(docs, "HorizontalPodAutoscaler", "query")["spec"]
    assert ingest["minReplicas"] >= 3 and ingest["maxReplicas"] >= 10
    assert query["minReplicas"] >= 3 and query["maxReplicas"] > query["minReplicas"]
    assert _by(docs, "Service", "gateway")["spec"]["type"] == "LoadBalancer"
    limits = _by(docs, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "1Gi"


def test_generated_configmaps_are_referenced_by_hashed_name():
    """kustomize must rewrite every reference to the hashed ConfigMap names (rolls pods on change)."""
    docs = render("prod")
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    refs = set()
    for _, spec in _templates(docs):
        for c in spec["containers"]:
            refs |= {e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e}
            refs |= {e["valueFrom"]["configMapKeyRef"]["name"] for e in c.get("env", [])
                     if "configMapKeyRef" in e.get("valueFrom", {})}
        refs |= {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
    assert refs and refs <= names, f"dangling ConfigMap references: {refs - names}"
    assert all(re.search(r"-[a-z0-9]{10}$", n) for n in refs)


def _templates(docs):
    return [(d, d["spec"]["template"]["spec"]) for d in docs if d["kind"] in ("Deployment", "Job")]
