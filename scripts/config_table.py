"""Print the README's configuration table from the services' typed config classes.

``python scripts/config_table.py`` prints it; tests/test_readme.py fails when the README's
copy (between the config-table markers) is stale.
"""

from __future__ import annotations

import importlib
import sys

from services.runtime import cli
from services.runtime.config import describe
from services.runtime.server import KNOWN_TARGETS, ServerConfig

BEGIN = "<!-- config-table:begin -->"
END = "<!-- config-table:end -->"


def table() -> str:
    rows = [("all", *row) for row in describe(ServerConfig)]
    for target in KNOWN_TARGETS:
        spec = importlib.import_module(f"services.{target}.service").SPEC
        rows += [(target, *row) for row in describe(spec.config)]
    from ops.config import OpsConfig  # `python -m ops backup|restore|doctor`: the stores' variables and tools

    rows += [("ops", *row) for row in describe(OpsConfig)]
    lines = ["| service | variable | default | meaning |", "|---|---|---|---|"]
    lines += [f"| {svc} | `{var}` | `{default}` | {doc} |" for svc, var, default, doc in rows]
    return "\n".join([BEGIN, *lines, END])


def main() -> int:
    cli.CommandParser(prog="python scripts/config_table.py", description=__doc__.split("\n\n")[0]).parse_args()
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python scripts/config_table.py"))
