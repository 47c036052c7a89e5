"""Where every benchmark leaves its numbers: ``bench/results/<name>.json`` (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent / "results"


def save(name: str, data: Any) -> Path:
    """Write ``data`` as JSON (datetimes and the like as text) and say where."""
    DIR.mkdir(parents=True, exist_ok=True)
    path = DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwrote {path.relative_to(DIR.parents[1])}")
    return path
