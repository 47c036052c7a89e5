"""Command lines: every error a user can cause is one clear line on stderr and a non-zero exit.

Every CLI of the project parses with ``CommandParser`` and runs through ``run``: the services'
sub-commands (``python -m services.<name> <command>``), the local stack, the scripts and the
benchmarks. Exit 2: a usage, configuration or validation error; 1: anything else.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

from .config import ConfigError
from .errors import DomainError, InvalidArgument


class UsageError(Exception):
    """An error the user can fix (a wrong argument, a port in use): the message says how. Exit 2."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (argparse prints the usage first, over several)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def finite_float(text: str) -> float:
    """An argparse ``type``: a finite number (``nan`` and ``inf`` parse as floats, but mean nothing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def run(main: Callable[[], int], prog: str) -> int:
    """``main()``'s exit status; an error is printed as one line ``<prog>: <what went wrong>``.

    An unexpected exception is a bug: still one line, with its type; ``LOG_LEVEL=DEBUG`` lets the
    traceback through for whoever fixes it.
    """
    try:
        return main()
    except ConfigError as exc:
        return _fail(prog, f"configuration error: {_line(str(exc))}", 2)
    except (UsageError, InvalidArgument) as exc:
        return _fail(prog, _line(getattr(exc, "message", str(exc))), 2)
    except DomainError as exc:
        return _fail(prog, _line(exc.message), 1)
    except OSError as exc:
        return _fail(prog, _line(str(exc)), 1)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        return _fail(prog, f"unexpected error ({type(exc).__name__}: {_line(str(exc))}); "
                           "LOG_LEVEL=DEBUG shows the traceback", 1)


def _line(text: str) -> str:
    """The message on one line (an exception's text may span several)."""
    return " ".join(text.split()) or "(no message)"


def _fail(prog: str, message: str, status: int) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return status
