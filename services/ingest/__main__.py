"""``python -m services.ingest [command]``."""

import sys

from services.runtime.server import main

sys.exit(main(["ingest"]))
