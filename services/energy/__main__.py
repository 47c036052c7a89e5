"""``python -m services.energy [command]``."""

import sys

from services.runtime.server import main

sys.exit(main(["energy"]))
