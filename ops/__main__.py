"""python -m ops backup DIR | restore DIR [--force] | doctor"""

from __future__ import annotations

import sys
from pathlib import Path

from services.runtime import cli
from services.runtime.config import load
from services.runtime.logs import setup_logging

from . import archive, doctor
from .config import OpsConfig

PROG = "python -m ops"


def main(argv: list[str] | None = None) -> int:
    parser = cli.CommandParser(prog=PROG, description="Back up, restore and check BanHammer's stores "
                               "(configured by the services' variables: TIMESCALEDB_URL, ENERGY_DATABASE_URL, "
                               "REDIS_URL, INFLUXDB_URL, ...; see the README, Operability).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{backup,restore,doctor}")
    backup = commands.add_parser("backup", help="back up every store into DIR (new or empty), with a manifest")
    backup.add_argument("directory", type=Path, metavar="DIR")
    restore = commands.add_parser("restore", help="restore every store from DIR (checksums verified first)")
    restore.add_argument("directory", type=Path, metavar="DIR")
    restore.add_argument("--force", action="store_true", help="replace what non-empty targets hold")
    commands.add_parser("doctor", help="check each store: reachable, version, extensions, migrations, "
                        "Redis persistence and eviction, InfluxDB retention")
    for sub in commands.choices.values():
        sub.error = parser.error  # one line, like every CLI of the project
    args = parser.parse_args(argv)

    def run() -> int:
        setup_logging("banhammer-ops", "WARNING")
        conf = load(OpsConfig)
        if args.command == "backup":
            path = archive.backup(conf, args.directory)
            print(f"backup complete: {path}")
            return 0
        if args.command == "restore":
            archive.restore(conf, args.directory, force=args.force)
            print("restore complete")
            return 0
        return doctor.run(conf)

    return cli.run(run, f"{PROG} {args.command}")


if __name__ == "__main__":
    sys.exit(main())
