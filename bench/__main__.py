"""Every benchmark in turn: ``python -m bench [--quick]`` (``make bench``); each prints its table
and writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
import sys

NAMES = ("ingest", "query", "session", "energy")


def main() -> int:
    failed = [name for name in NAMES
              if subprocess.run([sys.executable, "-m", f"bench.{name}", *sys.argv[1:]]).returncode != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
