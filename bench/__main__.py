"""Every benchmark in turn: ``python -m bench [--quick]`` (``make bench``); each prints its table
and writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
import sys

from services.runtime import cli

NAMES = ("ingest", "query", "session", "energy", "metrics", "sdk")


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's short run")
    args = parser.parse_args()
    failed = [name for name in NAMES
              if subprocess.run([sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]).returncode]
    if failed:
        print(f"python -m bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench"))
