"""The `fleet` command: `fleet <verb> [<subverb>] [flags]`.

Each verb lives in its own module with `register(subparsers)`; this module builds the parser,
turns every FleetError into one line on stderr and a non-zero exit, and never shows a
traceback for bad input.
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    """The full `fleet` parser."""
    from services.cli import (
        alerts,
        bench,
        bridge,
        cold,
        demo,
        hot,
        lake,
        query,
        secure,
        simulate,
        stack,
        topics,
    )

    parser = OneLineParser(
        prog="fleet", description="fleet-pipeline: connected-car telemetry, hot and cold paths."
    )
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", parser_class=OneLineParser, required=True)
    for module in (demo, stack, topics, simulate, bridge, hot, alerts, cold, lake, query, secure, bench):
        module.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `fleet` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except FleetError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)
