"""The bridge's counters, and their Prometheus names.

Every message read is, at any moment, in exactly one of: produced (acked after Kafka has it
on its telemetry topic), deadlettered (acked after the dead-letter topic has it), in flight
(read, not yet acked), or released (dropped from the window when a connection was lost: the
broker still holds it and will deliver it again). So, always:

    received == produced + deadlettered + in_flight + released

`released` stays 0 while both connections hold.
"""

from __future__ import annotations

import collections
import dataclasses

from services.common.metrics import Histogram, metric_lines


@dataclasses.dataclass
class BridgeMetrics:
    """Counters of one bridge process (monotonic since start, except in_flight)."""

    received: int = 0
    produced: int = 0
    deadlettered: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    released: int = 0
    acked: int = 0  # PUBACKs sent (QoS1 messages among produced + deadlettered)
    kafka_errors: int = 0
    mqtt_disconnects: int = 0
    paused: int = 0  # times reading stopped because the window was full
    in_flight: int = 0
    mqtt_connected: bool = False
    latency: Histogram = dataclasses.field(default_factory=Histogram)

    @property
    def deadlettered_total(self) -> int:
        """Dead letters of every reason."""
        return sum(self.deadlettered.values())

    def balanced(self) -> bool:
        """The accounting identity of the module docstring."""
        return self.received == self.produced + self.deadlettered_total + self.in_flight + self.released

    def render(self) -> str:
        """Prometheus text exposition."""
        lines: list[str] = []
        simple = [
            ("received", "counter", "MQTT messages read", self.received),
            (
                "produced",
                "counter",
                "messages acked after Kafka acknowledged their telemetry record",
                self.produced,
            ),
            (
                "released",
                "counter",
                "messages dropped from the window on a lost connection (redelivered)",
                self.released,
            ),
            ("acked", "counter", "MQTT PUBACKs sent", self.acked),
            ("kafka_errors", "counter", "failed Kafka writes (each triggers a reconnect)", self.kafka_errors),
            ("mqtt_disconnects", "counter", "MQTT connections lost", self.mqtt_disconnects),
            ("paused", "counter", "times reading paused on a full window", self.paused),
            ("in_flight", "gauge", "messages read and not yet acked", self.in_flight),
            (
                "mqtt_connected",
                "gauge",
                "1 while the MQTT session is up and subscribed",
                int(self.mqtt_connected),
            ),
        ]
        for name, kind, text, value in simple:
            suffix = "_total" if kind == "counter" else ""
            lines += metric_lines(f"fleet_bridge_{name}{suffix}", kind, text, [({}, value)])
        lines += metric_lines(
            "fleet_bridge_deadlettered_total",
            "counter",
            "messages acked after the dead-letter topic acknowledged them, by reason",
            [({"reason": reason}, n) for reason, n in sorted(self.deadlettered.items())],
        )
        lines += self.latency.lines(
            "fleet_bridge_latency_seconds", "MQTT PUBLISH read -> Kafka acknowledged -> PUBACK sent"
        )
        return "\n".join(lines) + "\n"
