"""The `fleet` command: `fleet <verb> [<subverb>] [flags]`.

Each verb lives in its own module with `register(subparsers)`; this module builds the parser,
turns every FleetError into one line on stderr and a non-zero exit, and never shows a
traceback for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from services.common.errors import FleetError
from services.common.lifecycle import EXIT_INTERRUPTED


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        """Print `fleet <verb>: error: ...` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# The modules that register verbs, in `fleet --help` order; verbs not named after their module below.
# A command imports only its own verb's module: a service process does not load DuckDB or Faust
# for nothing (half a second of start-up, and DuckDB's exit-time warnings in every service's log).
MODULES = (
    "demo",
    "stack",
    "topics",
    "simulate",
    "bridge",
    "hot",
    "alerts",
    "cold",
    "lake",
    "query",
    "secure",
    "bench",
)
VERB_MODULE = {"schema": "simulate", "up": "stack", "down": "stack", "status": "stack"}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The `fleet` parser: every verb, or only `verb`'s module when it names one."""
    module = VERB_MODULE.get(verb, verb) if verb is not None else None
    modules = (module,) if module in MODULES else MODULES
    parser = OneLineParser(
        prog="fleet", description="fleet-pipeline: connected-car telemetry, hot and cold paths."
    )
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", parser_class=OneLineParser, required=True)
    for name in modules:
        importlib.import_module(f"services.cli.{name}").register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `fleet` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except FleetError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)
