"""``python -m services.query [command]``."""

import sys

from services.runtime.server import main

sys.exit(main(["query"]))
