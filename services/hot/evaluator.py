"""The hot path's batch handler and timer without Faust: records in, alerts and state writes out.

    evaluator = Evaluator(RuleEngine(load_rules()), topic_of={"telemetry.engine": "engine", ...},
                          stored=table.get)
    out = evaluator.on_batch([Record(topic, partition, key, value, headers), ...], now_ms())
    out.alerts      # [(vin, Alert), ...] to send, in order
    out.writes      # {vin: (partition, state)}: one Table write per car per batch
    out = evaluator.on_timer(now_ms())     # staleness: alerts only (see `overlay`)

A car's five frames of a tick arrive together, so writing its state once per batch instead of
once per frame divides the changelog traffic by about five. Staleness is decided by the timer,
which Faust does not let write a Table (the changelog partition comes from the current event):
the timer's state changes wait in `overlay` and reach the Table with the car's next frame.

The timer measures silence against each partition's clock (the newest `received_ms` processed
in it), not against now: a worker catching up on a backlog would otherwise find every car
silent, and a partition whose cars all stopped (the bridge is down) raises nothing.
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
        self, engine: RuleEngine, topic_of: Mapping[str, str], stored: Callable[[str], State | None]
    ):
        self.engine = engine
        self.topic_of = topic_of
        self.stored = stored
        self.overlay: dict[str, State] = {}  # vin -> state the timer changed since the car's last frame
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
            before = latest[vin][1] if vin in latest else (self.overlay.pop(vin, None) or self.stored(vin))
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
        """Staleness for every car seen, each against its partition's clock."""
        out = Outcome()
        for vin, partition in list(self.partition_of.items()):
            clock = self.clock.get(partition)
            if clock is None:
                continue
            state = self.overlay.get(vin) or self.stored(vin)
            new, raised = self.engine.on_timer(vin, state, clock)
            out.alerts += [(vin, dataclasses.replace(alert, detected_at=now_ms)) for alert in raised]
            if new is not state and new is not None:
                self.overlay[vin] = new
        self.sent.update(alert.status for _, alert in out.alerts)
        return out
