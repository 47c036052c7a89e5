"""Shared loaders for the offline deployment checks (no Docker engine, no cluster, no network)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "prod")
#: Kubernetes version the manifests are validated against (newest kubernetes-validate ships).
K8S_VERSION = "1.37.0"


def load_docs(path: Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


@functools.cache
def kustomize_command() -> tuple[str, ...] | None:
    """A kustomize renderer: standalone `kustomize build`, else `kubectl kustomize`, else None."""
    if shutil.which("kustomize"):
        return ("kustomize", "build")
    if shutil.which("kubectl"):
        probe = subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ("kubectl", "kustomize")
    return None


@functools.cache
def render(target: str) -> tuple[dict, ...]:
    """Render `base` or an overlay name with kustomize; skip the calling test when none exists."""
    cmd = kustomize_command()
    if cmd is None:
        pytest.skip("no kustomize binary (neither `kustomize` nor `kubectl kustomize`) on PATH: "
                    "rendering skipped; the static kustomization checks still ran")
    path = BASE if target == "base" else K8S / "overlays" / target
    out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kustomize failed for {target}:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d is not None)


def kustomization(path: Path) -> dict:
    return yaml.safe_load((path / "kustomization.yaml").read_text())


def base_resources() -> list[dict]:
    """The base's resources as written (before kustomize), in kustomization order."""
    docs: list[dict] = []
    for rel in kustomization(BASE)["resources"]:
        docs.extend(load_docs(BASE / rel))
    return docs


def pod_templates(docs) -> list[tuple[dict, dict]]:
    """(workload, pod spec) for every Deployment and Job."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out.append((d, d["spec"]["template"]["spec"]))
    return out
