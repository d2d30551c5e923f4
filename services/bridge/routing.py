"""Where a message goes: its Kafka record, or a dead-letter record saying why not.

    router = Router(settings)
    record = router.route("fleet/1FLEET00000000042/engine", payload, received_ms)
    record.topic     # "telemetry.engine" (or "telemetry.deadletter")
    record.reason    # None, or the reason code ("out_of_range", ...)

Valid frames are forwarded as the bytes the car sent (already compact JSON; re-encoding would
cost time and prove nothing). Dead-letter records follow Kafka Connect's convention: the value
is the original payload, the reason and its detail ride in headers, so any consumer can
re-publish the payload once the cause is fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from schemas.catalog import SUBSYSTEMS
from schemas.fastvalidate import FrameValidator
from schemas.validate import VIN_RE, Invalid, Valid
from services.bridge.settings import BridgeSettings

Checker = Callable[[str, bytes, int], Valid | Invalid]

# Kafka refuses records above message.max.bytes (~1 MB by default) for good; a dead-letter
# record that can never be written would stall the bridge forever. Longer payloads (Mosquitto
# lets up to max_packet_size through) keep their first 512 KiB and say how long they were.
DEADLETTER_MAX_VALUE = 512 * 1024


@dataclasses.dataclass(slots=True)
class Record:
    """One Kafka record to produce, and the dead-letter reason when it is one."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    reason: str | None = None


def _vin_of(mqtt_topic: str) -> bytes | None:
    """The topic's VIN when it has a well-formed one (dead letters stay keyed by car when possible)."""
    parts = mqtt_topic.split("/")
    if len(parts) >= 2 and VIN_RE.fullmatch(parts[1]):
        return parts[1].encode()
    return None


class Router:
    """Validates each message and builds its record (never raises on bad input)."""

    def __init__(self, settings: BridgeSettings, check: Checker | None = None):
        self.topics: dict[str, str] = {
            subsystem: settings.topic_prefix + subsystem for subsystem in SUBSYSTEMS
        }
        self.deadletter_topic = settings.deadletter_topic
        # The catalog-derived msgspec validator: 2.6 us per valid frame against 11.7 us for the
        # reference, whose verdict (and reason) it returns on anything it does not accept.
        self._check = check or FrameValidator(settings.max_frame_bytes).check

    def route(self, mqtt_topic: str, payload: bytes, received_ms: int) -> Record:
        """The record for one MQTT message received at `received_ms` (wall clock)."""
        verdict = self._check(mqtt_topic, payload, received_ms)
        stamp = str(received_ms).encode()
        if isinstance(verdict, Valid):
            # key VIN: all of a car's frames land in one partition, in order
            headers = [("mqtt_topic", mqtt_topic.encode()), ("received_ms", stamp)]
            return Record(self.topics[verdict.subsystem], verdict.vin.encode(), payload, headers)
        return self.deadletter(mqtt_topic, payload, received_ms, verdict)

    def deadletter(self, mqtt_topic: str, payload: bytes, received_ms: int, verdict: Invalid) -> Record:
        """The dead-letter record: original payload as the value, why in the headers."""
        headers = [
            ("mqtt_topic", mqtt_topic.encode(errors="replace")),
            ("received_ms", str(received_ms).encode()),
            ("dlq_reason", verdict.reason.encode()),
            ("dlq_detail", verdict.detail.encode(errors="replace")),
        ]
        value = payload
        if len(payload) > DEADLETTER_MAX_VALUE:
            headers.append(("payload_bytes", str(len(payload)).encode()))
            value = payload[:DEADLETTER_MAX_VALUE]
        return Record(self.deadletter_topic, _vin_of(mqtt_topic), value, headers, verdict.reason)
