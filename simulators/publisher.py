"""Publishing frames: over MQTT (paho-mqtt 2.x) or into a JSONL file. The model stays pure.

Connection strategy: a pool of a few MQTT connections, each car pinned to one connection
(vin hash), so a car's frames keep their order; with per-car credentials (the ACL profile)
every car gets its own connection and logs in as its VIN. `fleet bench simulator` measures
both.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import zlib
from pathlib import Path
from typing import IO, Protocol

import paho.mqtt.client as mqtt

from services.common.errors import BrokerUnavailable
from services.common.mqtt import connect, make_client
from services.common.settings import MqttSettings


class FrameSink(Protocol):
    """Where encoded frames go."""

    def publish(self, topic: str, payload: bytes) -> None:
        """Hand over one message; never blocks (callers wait while `congested()`)."""

    def congested(self) -> bool:
        """True while the caller should wait before publishing more."""

    def pending(self) -> int:
        """Messages handed over but not yet confirmed (QoS1 PUBACK, or written)."""

    def close(self, within_s: float) -> int:
        """Wait up to `within_s` for pending messages, disconnect; return how many never confirmed."""


class MqttSink:
    """Frames over MQTT from a pool of connections (or one per car with credentials)."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        qos: int,
        connections: int,
        client_prefix: str,
        credentials: dict[str, str] | None = None,
        window: int = 1000,
    ):
        self.qos = qos
        self.settings = settings
        self.credentials = credentials
        # paho finds the next queued message by scanning all of them on every PUBACK, so a deep
        # queue inside paho makes throughput collapse (quadratic). We keep at most `window`
        # messages per connection unconfirmed, matching paho's in-flight limit, and make the
        # caller wait instead (`congested`).
        self.window = window
        # Only the publishing thread writes _sent; each connection's network thread writes its
        # own slot of _acks. No lock on the hot path: CPython reads of ints are atomic.
        self._sent = 0
        self._acks: list[int] = []
        self._clients: dict[str, mqtt.Client] = {}
        self._pool: list[mqtt.Client] = []
        self._prefix = client_prefix
        if credentials is None:
            self._pool = [self._connect(f"{client_prefix}-{i}", settings) for i in range(max(1, connections))]

    def _connect(self, client_id: str, settings: MqttSettings) -> mqtt.Client:
        client = make_client(settings, client_id)
        client.max_inflight_messages_set(self.window)
        client.max_queued_messages_set(0)
        slot = len(self._acks)
        self._acks.append(0)

        def on_publish(_c: mqtt.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
            self._acks[slot] += 1

        client.on_publish = on_publish
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
            if getattr(reason, "is_failure", False):
                refused.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        try:
            connect(client, settings)
        except OSError as exc:
            raise BrokerUnavailable(f"MQTT {settings.host}:{settings.port}: {exc.strerror or exc}") from None
        client.loop_start()
        if not connected.wait(10) or refused:
            client.loop_stop()
            why = refused[0] if refused else "no CONNACK within 10 s"
            raise BrokerUnavailable(f"MQTT {settings.host}:{settings.port} refused {client_id}: {why}")
        return client

    def _client_for(self, topic: str) -> mqtt.Client:
        parts = topic.split("/", 2)
        vin = parts[1] if len(parts) > 1 else topic
        client = self._clients.get(vin)
        if client is not None:
            return client
        if self.credentials is None:
            client = self._pool[zlib.crc32(vin.encode()) % len(self._pool)]
            self._clients[vin] = client
        else:
            password = self.credentials.get(vin, "")
            creds = dataclasses.replace(self.settings, username=vin, password=password)
            client = self._connect(f"{self._prefix}-{vin}", creds)
            self._clients[vin] = client
        return client

    def connect_cars(self, vins: list[str]) -> None:
        """Open the per-car connections up front (otherwise each opens on its first frame)."""
        for vin in vins:
            self._client_for(f"fleet/{vin}")

    def publish(self, topic: str, payload: bytes) -> None:
        """Hand one message to its connection."""
        self._client_for(topic).publish(topic, payload, qos=self.qos)
        self._sent += 1

    def congested(self) -> bool:
        """More unconfirmed messages than the connections' in-flight windows hold."""
        return self.pending() > self.window * max(1, len(self._acks))

    def pending(self) -> int:
        """Published but not yet acknowledged (QoS1 PUBACK; QoS0: written to the socket)."""
        return self._sent - self.confirmed

    @property
    def confirmed(self) -> int:
        """Messages the broker acknowledged (QoS1) or that paho wrote to the socket (QoS0)."""
        return sum(self._acks)

    def close(self, within_s: float) -> int:
        """Wait for outstanding PUBACKs, then disconnect every client."""
        deadline = time.monotonic() + within_s
        while self.pending() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        left = self.pending()
        for client in {id(c): c for c in [*self._pool, *self._clients.values()]}.values():
            client.disconnect()
            client.loop_stop()
        return left


class JsonlSink:
    """Frames into a JSONL file instead of MQTT (`--out`): {"topic", "payload"} per line."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w")
        self.confirmed = 0

    def publish(self, topic: str, payload: bytes) -> None:
        """Write one line; undecodable payloads (bad frames) are base64."""
        try:
            line = json.dumps({"topic": topic, "payload": json.loads(payload)}, separators=(",", ":"))
        except (UnicodeDecodeError, ValueError):
            line = json.dumps({"topic": topic, "payload_b64": base64.b64encode(payload).decode()})
        self._file.write(line + "\n")
        self.confirmed += 1

    def congested(self) -> bool:
        """A file never pushes back."""
        return False

    def pending(self) -> int:
        """Nothing is ever pending in a file."""
        return 0

    def close(self, within_s: float) -> int:
        """Flush and close the file."""
        self._file.close()
        return 0
