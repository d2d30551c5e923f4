"""`fleet hot`: run a hot-path worker (Faust) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LogSettings
from services.hot.settings import HotSettings


def register(verbs: Any) -> None:
    """Add `fleet hot`."""
    parser = verbs.add_parser(
        "hot", help="raise vehicle health alerts from the telemetry topics (Faust worker)"
    )
    HotSettings.add_arguments(parser)
    KafkaSettings.add_arguments(parser, only={"bootstrap"})
    LogSettings.add_arguments(parser)
    parser.set_defaults(func=cmd_hot)


def cmd_hot(args: argparse.Namespace) -> NoReturn:
    """Build the app from settings and hand it to a Faust worker (which owns signals and the loop)."""
    settings = HotSettings.from_args(args)
    kafka = KafkaSettings.from_args(args)
    level = LogSettings.from_args(args).level
    configure_logging(level)
    import asyncio

    import faust  # deferred: heavy, and only this verb needs it
    import uvloop

    # Faust's per-event machinery is mostly event-loop callbacks; uvloop measured 13% more frames/s.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    from services.hot.app import build_app

    app = build_app(settings, kafka)
    settings.datadir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=level, quiet=True, redirect_stdouts=False)
    # At WARNING and above Faust's terminal spinner turns the root logger to DEBUG, and every
    # debug call in Faust's send path then builds a record (measured: 5% of the worker's time).
    worker.spinner = None
    worker.execute_from_commandline()  # runs until a signal, then exits the process
