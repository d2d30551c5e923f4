"""`fleet cold`: run a lake writer (a member of the cold consumer group) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services.cold.settings import ColdSettings
from services.cold.writer import ColdWriter
from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LakeSettings, LogSettings

# Every cold setting but the compaction's.
WRITER_FIELDS = {f.name for f, _ in ColdSettings.fields()} - {"compact_grace_s"}


def register(verbs: Any) -> None:
    """Add `fleet cold`."""
    parser = verbs.add_parser(
        "cold", help="archive the telemetry and alert topics into the Parquet lake, exactly once per offset"
    )
    ColdSettings.add_arguments(parser, only=WRITER_FIELDS)
    LakeSettings.add_arguments(parser)
    KafkaSettings.add_arguments(parser, only={"bootstrap"})
    LogSettings.add_arguments(parser)
    parser.set_defaults(func=cmd_cold)


def cmd_cold(args: argparse.Namespace) -> int:
    """Wire the settings into a ColdWriter and run it."""
    settings = ColdSettings.from_args(args)
    lake = LakeSettings.from_args(args)
    kafka = KafkaSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    asyncio.run(run_until_signalled(ColdWriter(settings, kafka, lake)))
    return 0
