"""The one exception tree of fleet-pipeline.

    FleetError                      base; `retriable` says whether trying again can help
    ├── ConfigError                 a bad setting, flag or config file value (never retriable)
    ├── TopicError                  topic provisioning
    │   └── PartitionMismatch       an existing topic's partition count differs from topics.yaml
    ├── BrokerUnavailable           a broker did not answer in time (retriable)
    └── StackError                  the local stack launcher
        ├── BinaryNotFound          Mosquitto or Tansu is not installed
        ├── PortInUse               a port the stack needs is taken
        └── ProcessDied             a child exited while starting or running

Every error's `str()` is one line a person can act on; the CLI prints it as
`fleet: error: <message>` and exits non-zero, never with a traceback.
"""

from __future__ import annotations

from typing import ClassVar


class FleetError(Exception):
    """Base of every error fleet-pipeline raises on purpose."""

    retriable: ClassVar[bool] = False
    exit_code: ClassVar[int] = 1


class ConfigError(FleetError):
    """A setting, CLI flag or config file holds a value we cannot use."""

    exit_code = 2


class TopicError(FleetError):
    """Topics could not be provisioned or described."""


class PartitionMismatch(TopicError):
    """An existing topic has a different partition count than topics.yaml (breaks co-partitioning)."""


class BrokerUnavailable(FleetError):
    """A broker did not answer a protocol round-trip in time."""

    retriable = True


class StackError(FleetError):
    """The local stack could not start or stop."""


class BinaryNotFound(StackError):
    """A broker binary is missing."""


class PortInUse(StackError):
    """A port the stack needs is already bound by another process."""


class ProcessDied(StackError):
    """A child process exited while the stack expected it to run."""
