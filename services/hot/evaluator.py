"""The hot path's batch handler and timer without Faust: records in, alerts and state writes out.

    evaluator = Evaluator(RuleEngine(load_rules()), topic_of={"telemetry.engine": "engine", ...},
                          stored=table.get, cars=table.keys, partition_of=lambda vin: ...)
    out = evaluator.on_batch([Record(topic, partition, key, value, headers), ...], now_ms())
    out.alerts      # [(vin, Alert), ...] to send, in order
    out.writes      # {vin: (partition, state)}: one Table write per car per batch
    out = evaluator.on_timer(now_ms())     # staleness: alerts, and the states it changed

A car's five frames of a tick arrive together, so writing its state once per batch instead of
once per frame divides the Table writes by about five. The caller writes a state only after
the alerts of the same outcome are acknowledged, so a state never remembers an alert that was
lost.

The timer measures silence against each partition's clock (the newest `received_ms` processed
in it), not against now: a worker catching up on a backlog would otherwise find every car
silent, and a partition whose cars all stopped (the bridge is down) raises nothing. It looks
at every car of the Table (`cars`), not only those this process has seen a frame from: a
worker restarted after a car fell silent never reads that car's frames again.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from services.hot.alerts import Alert
from services.hot.engine import RuleEngine
from services.hot.rules import State

decode = msgspec.json.Decoder().decode  # a frame's JSON: 2-3x json.loads, same objects


class Record(NamedTuple):
    """One consumed Kafka record, as far as the hot path reads it."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Any  # a list of (name, bytes) pairs, or a mapping


@dataclasses.dataclass
class Outcome:
    """What one batch or one timer tick produced."""

    alerts: list[tuple[str, Alert]] = dataclasses.field(default_factory=list)
    writes: dict[str, tuple[int, State]] = dataclasses.field(default_factory=dict)


def header(headers: Any, name: str) -> bytes | None:
    """A header value from Faust's headers (a list of pairs or a mapping)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        if key == name:
            return bytes(value) if value is not None else None
    return None


class Evaluator:
    """The hot path's per-worker logic; `stored(vin)` reads the Table."""

    def __init__(
        self,
        engine: RuleEngine,
        topic_of: Mapping[str, str],
        stored: Callable[[str], State | None],
        cars: Callable[[], Iterable[str]] = tuple,
        partition_for: Callable[[str], int] | None = None,
    ):
        self.engine = engine
        self.topic_of = topic_of
        self.stored = stored
        self.cars = cars  # the VINs whose state the Table holds (restored ones included)
        self.partition_for = partition_for  # a VIN's partition (the producer's key partitioner)
        self.partition_of: dict[str, int] = {}  # vin -> its partition
        self.clock: dict[int, int] = {}  # partition -> newest received_ms processed
        self.frames = 0
        self.skipped = 0  # records that are not a frame of ours (the bridge never forwards one)
        self.sent: Counter[str] = Counter()  # alerts by status
        self.writes = 0

    def on_batch(self, records: Iterable[Record], now_ms: int) -> Outcome:
        """Evaluate records in order; each car's newest state is written once."""
        out = Outcome()
        latest: dict[str, tuple[int, State]] = {}
        for record in records:
            subsystem = self.topic_of.get(record.topic)
            try:
                vin = record.key.decode() if record.key is not None else ""
                frame = decode(record.value) if record.value is not None else None
            except (UnicodeDecodeError, msgspec.DecodeError):
                frame = None
            if subsystem is None or not vin or not isinstance(frame, dict):
                self.skipped += 1
                continue
            received = header(record.headers, "received_ms")
            received_ms = int(received) if received and received.isdigit() else None
            self.partition_of[vin] = record.partition
            if received_ms is not None and received_ms > self.clock.get(record.partition, 0):
                self.clock[record.partition] = received_ms
            before = latest[vin][1] if vin in latest else self.stored(vin)
            after, raised = self.engine.on_frame(
                vin, subsystem, frame, before, now_ms, received_ms=received_ms
            )
            self.frames += 1
            out.alerts += [(vin, alert) for alert in raised]
            latest[vin] = (record.partition, after)
        for vin, (partition, state) in latest.items():
            if state is not self.stored(vin):
                out.writes[vin] = (partition, state)
        self.writes += len(out.writes)
        self.sent.update(alert.status for _, alert in out.alerts)
        return out

    def on_timer(self, now_ms: int) -> Outcome:
        """Staleness for every car of the Table, each against its partition's clock."""
        out = Outcome()
        if self.partition_for is not None:
            for vin in self.cars():
                if vin not in self.partition_of:
                    self.partition_of[vin] = self.partition_for(vin)
        for vin, partition in list(self.partition_of.items()):
            clock = self.clock.get(partition)
            if clock is None:
                continue
            state = self.stored(vin)
            new, raised = self.engine.on_timer(vin, state, clock)
            out.alerts += [(vin, dataclasses.replace(alert, detected_at=now_ms)) for alert in raised]
            if new is not state and new is not None:
                out.writes[vin] = (partition, new)
        self.writes += len(out.writes)
        self.sent.update(alert.status for _, alert in out.alerts)
        return out
