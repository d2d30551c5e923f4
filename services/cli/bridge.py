"""`fleet bridge`: run the MQTT -> Kafka bridge until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services.bridge.bridge import Bridge
from services.bridge.settings import BridgeSettings
from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LogSettings, MqttSettings


def register(verbs: Any) -> None:
    """Add `fleet bridge`."""
    parser = verbs.add_parser(
        "bridge", help="move MQTT frames into per-subsystem Kafka topics (PUBACK after Kafka, in order)"
    )
    BridgeSettings.add_arguments(parser)
    MqttSettings.add_arguments(parser, only={"host", "port", "username", "password", "tls_ca"})
    KafkaSettings.add_arguments(parser, only={"bootstrap"})
    LogSettings.add_arguments(parser)
    parser.set_defaults(func=cmd_bridge)


def cmd_bridge(args: argparse.Namespace) -> int:
    """Wire the settings into a Bridge and run it."""
    settings = BridgeSettings.from_args(args)
    mqtt = MqttSettings.from_args(args)
    kafka = KafkaSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    asyncio.run(run_until_signalled(Bridge(settings, kafka, mqtt)))
    return 0
