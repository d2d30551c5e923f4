"""Logging setup: one line per event, with `key=value` context appended.

log.info("broker ready", extra={"broker": "tansu", "port": 9092, "took_s": 0.21})
# 2026-11-22T03:15:02.113Z INFO services.stack.launcher broker ready broker=tansu port=9092 took_s=0.21
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """UTC ISO timestamps; every `extra` field appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC with milliseconds: telemetry is read across time zones."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """Format the record, then its context fields."""
        line = super().format(record)
        context = " ".join(f"{key}={value}" for key, value in vars(record).items() if key not in _STANDARD)
        return f"{line} {context}" if context else line


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route the root logger to `stream` (stderr) with our format; safe to call twice."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiokafka logs every metadata refresh at INFO; keep its warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
