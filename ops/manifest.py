"""The backup's manifest (manifest.json): when, from where, which versions, and a SHA-256 for every
file, checked before anything is restored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from services.runtime.cli import UsageError

NAME = "manifest.json"
FORMAT = 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``directory`` but the manifest."""
    return {str(p.relative_to(directory)): _sha256(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != NAME}


def write(directory: Path, stores: dict[str, dict], tools: dict[str, str]) -> Path:
    manifest = {"format": FORMAT, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "tools": tools, "stores": stores, "files": checksums(directory)}
    path = directory / NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_verified(directory: Path) -> dict:
    """The manifest, once every file it lists is present and unchanged (and no other file was added)."""
    path = directory / NAME
    if not path.is_file():
        raise UsageError(f"{directory} holds no {NAME}: not a backup made by `python -m ops backup`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if manifest.get("format") != FORMAT:
        raise UsageError(f"{path}: backup format {manifest.get('format')!r}, this tool reads {FORMAT}")
    found = checksums(directory)
    listed = manifest["files"]
    if missing := sorted(set(listed) - set(found)):
        raise UsageError(f"backup incomplete: {', '.join(missing[:5])} missing from {directory}")
    if changed := sorted(name for name in listed if found[name] != listed[name]):
        raise UsageError(f"backup damaged: checksum mismatch for {', '.join(changed[:5])}")
    if extra := sorted(set(found) - set(listed)):
        raise UsageError(f"backup altered: {', '.join(extra[:5])} not in the manifest")
    return manifest
