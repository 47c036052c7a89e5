"""``python -m services.session [command]``."""

import sys

from services.runtime.server import main

sys.exit(main(["session"]))
