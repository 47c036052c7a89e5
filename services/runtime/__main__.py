"""``python -m services.runtime --target ingest,query``: several services in one process."""

import os
import sys

from .cli import CommandParser
from .server import KNOWN_TARGETS, main

parser = CommandParser(prog="python -m services.runtime")
parser.add_argument(
    "--target",
    default=os.environ.get("BANHAMMER_TARGETS", ",".join(KNOWN_TARGETS)),
    help="comma-separated services to host (default: all)",
)
args = parser.parse_args()
sys.exit(main([t.strip() for t in args.target.split(",") if t.strip()], argv=[], prog=parser.prog))
