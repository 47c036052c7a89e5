"""Repository paths, and loading of the deploy/ scripts (which are not a package)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "gen"
DESCRIPTOR = REPO / "build" / "banhammer.pb"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TARGETS = ("ingest", "query", "session", "energy")


def load_script(relpath: str, name: str) -> ModuleType:
    """Import a repository script (e.g. deploy/envoy/render.py) as module ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def envoy_render() -> ModuleType:
    return load_script("deploy/envoy/render.py", "banhammer_envoy_render")


def missing_services() -> list[str]:
    return [t for t in TARGETS if not (REPO / "services" / t / "service.py").exists()]
