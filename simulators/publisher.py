"""Publishing frames: over MQTT (paho-mqtt 2.x) or into a JSONL file. The model stays pure.

Connection strategy: a pool of a few MQTT connections, each car pinned to one connection
(vin hash), so a car's frames keep their order; with per-car credentials (the ACL profile)
every car gets its own connection and logs in as its VIN. `fleet bench simulator` measures
both.
"""

from __future__ import annotations

import base64
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
        """Send one message (may block briefly for backpressure)."""

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
        max_pending: int = 20_000,
    ):
        self.qos = qos
        self.settings = settings
        self.credentials = credentials
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._sent = 0
        self._confirmed = 0
        self._clients: dict[str, mqtt.Client] = {}
        self._pool: list[mqtt.Client] = []
        self._prefix = client_prefix
        if credentials is None:
            self._pool = [self._connect(f"{client_prefix}-{i}", settings) for i in range(max(1, connections))]

    def _connect(self, client_id: str, settings: MqttSettings) -> mqtt.Client:
        client = make_client(settings, client_id)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_publish = self._on_publish
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

    def _on_publish(self, _c: mqtt.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self._confirmed += 1

    def _client_for(self, topic: str) -> mqtt.Client:
        vin = topic.split("/", 2)[1] if topic.count("/") >= 1 else topic
        if self.credentials is None:
            return self._pool[zlib.crc32(vin.encode()) % len(self._pool)]
        client = self._clients.get(vin)
        if client is None:
            password = self.credentials.get(vin, "")
            creds = MqttSettings(**{**self.settings.__dict__, "username": vin, "password": password})
            client = self._connect(f"{self._prefix}-{vin}", creds)
            self._clients[vin] = client
        return client

    def connect_cars(self, vins: list[str]) -> None:
        """Open the per-car connections up front (otherwise each opens on its first frame)."""
        for vin in vins:
            self._client_for(f"fleet/{vin}")

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one message; waits while too many are unconfirmed (bounded memory)."""
        while self.pending() > self.max_pending:
            time.sleep(0.001)
        self._client_for(topic).publish(topic, payload, qos=self.qos)
        with self._lock:
            self._sent += 1
            if self.qos == 0:
                self._confirmed = self._sent  # QoS0 has no acknowledgement: handed to the socket

    def pending(self) -> int:
        """Published but not yet acknowledged."""
        with self._lock:
            return self._sent - self._confirmed

    @property
    def confirmed(self) -> int:
        """Messages the broker acknowledged (QoS1) or that went to the socket (QoS0)."""
        with self._lock:
            return self._confirmed

    def close(self, within_s: float) -> int:
        """Wait for outstanding PUBACKs, then disconnect every client."""
        deadline = time.monotonic() + within_s
        while self.pending() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        left = self.pending()
        for client in [*self._pool, *self._clients.values()]:
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

    def pending(self) -> int:
        """Nothing is ever pending in a file."""
        return 0

    def close(self, within_s: float) -> int:
        """Flush and close the file."""
        self._file.close()
        return 0
