"""The Bridge service: MQTT in, Kafka out, PUBACK only after Kafka, in arrival order.

    bridge = Bridge(BridgeSettings.from_env(), KafkaSettings.from_env(), MqttSettings.from_env())
    await bridge.start()    # producer started and topics checked, session resumed, metrics served
    await bridge.wait()     # runs forever: acks as Kafka confirms, recovers from outages
    await bridge.stop()     # acks what Kafka confirms within a grace period, disconnects

Per message: read (paho, on the loop) -> route (validate; telemetry or dead letter) -> add to
its partition's batch -> window entry. The ack loop releases PUBACKs for the window's
confirmed prefix. Every failure takes one path: stop reading, drop the connection without
acking (the broker keeps every unacked message of our persistent session and redelivers it),
rebuild what broke with backoff, resume. Nothing is ever acked that Kafka does not hold, so
an outage or a crash costs duplicates, never messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.catalog import SUBSYSTEMS
from services.bridge.batcher import Batcher
from services.bridge.metrics import BridgeMetrics
from services.bridge.routing import Checker, Router
from services.bridge.settings import BridgeSettings
from services.bridge.source import MqttSource
from services.bridge.window import AckWindow, Entry, WriteFailed
from services.common.kafka import require_topics, start_producer
from services.common.metrics import MetricsServer
from services.common.settings import KafkaSettings, MqttSettings

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # on stop, how long confirmed writes may still be acked


class Bridge:
    """One bridge process: a persistent MQTT session feeding a Kafka producer."""

    def __init__(
        self,
        settings: BridgeSettings,
        kafka: KafkaSettings,
        mqtt_settings: MqttSettings,
        check: Checker | None = None,
    ):
        self.settings = settings
        self.kafka = kafka
        self.mqtt = mqtt_settings
        self.metrics = BridgeMetrics()
        self.router = Router(settings, check)
        self.window = AckWindow()
        self.metrics_server = MetricsServer(self.metrics.render, settings.metrics_host, settings.metrics_port)
        self.topics = [self.router.topics[s] for s in SUBSYSTEMS] + [settings.deadletter_topic]
        self._producer: AIOKafkaProducer | None = None
        self._batcher: Batcher | None = None
        self._source: MqttSource | None = None
        self._wake = asyncio.Event()  # a burst was read, or the connection was lost
        self._lost = False
        self._stopped = False

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve metrics, start the producer (topics must exist), resume the MQTT session."""
        await self.metrics_server.start()
        await self._open_kafka()
        self._source = MqttSource(
            self.mqtt,
            self.settings.session_id,
            self.settings.subscription,
            v5=self.settings.mqtt_protocol == "5",
            on_message=self._on_message,
            on_burst=self._on_burst,
            on_lost=self._on_lost,
            retry_max_s=self.settings.retry_max_s,
        )
        await self._source.connect()
        self.metrics.mqtt_connected = True
        # Everything built so far lives as long as the process: take it out of the collector's
        # sight, so a full collection only walks the short-lived per-message objects.
        gc.freeze()

    async def wait(self) -> None:
        """Ack as Kafka confirms; on a failure, recover and go on. Never returns by itself."""
        while True:
            try:
                await self._ack_until_lost()
                kafka_failed = False
            except WriteFailed as exc:
                self.metrics.kafka_errors += 1
                log.warning("Kafka write failed; reconnecting both sides", extra={"error": exc.cause})
                kafka_failed = True
            await self._recover(kafka_failed)

    async def stop(self) -> None:
        """Ack what Kafka confirms within STOP_GRACE_S, then disconnect; safe twice."""
        if self._stopped:
            return
        self._stopped = True
        source = self._source
        if source is not None:
            source.pause()
            if source.connected:
                with contextlib.suppress(TimeoutError, WriteFailed):
                    async with asyncio.timeout(STOP_GRACE_S):
                        while len(self.window) and not self._lost:
                            await self._ack_confirmed()
            await source.disconnect()  # queued PUBACKs go out before the DISCONNECT
            self.metrics.mqtt_connected = False
        self._release()
        await self._close_kafka()
        await self.metrics_server.stop()
        log.info("bridge stopped", extra=self._summary())

    # --- the message path (called by paho, on the loop) -------------------------------------
    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        record = self.router.route(message.topic, bytes(message.payload), int(now * 1000))
        assert self._batcher is not None
        write = self._batcher.add(record)
        window = self.window
        window.add(Entry(message.mid, message.qos, write, time.monotonic(), record.reason))
        self.metrics.received += 1
        if record.reason is not None:
            log.info(
                "dead letter",
                extra={"reason": record.reason, "mqtt_topic": message.topic[:200], "mid": message.mid},
            )
        if len(window) >= self.settings.max_inflight and self._source is not None:
            self._source.pause()  # resumed by the ack loop at half the window
            self.metrics.paused += 1

    def _on_burst(self) -> None:
        if self._batcher is not None:
            self._batcher.flush()
        self.metrics.in_flight = len(self.window)
        self._wake.set()

    def _on_lost(self, reason: str) -> None:
        self.metrics.mqtt_disconnects += 1
        log.warning("MQTT connection lost; will reconnect", extra={"reason": reason})
        self._lost = True
        self.metrics.mqtt_connected = False
        self._wake.set()

    # --- acks ---------------------------------------------------------------------------------
    async def _ack_until_lost(self) -> None:
        """Release PUBACKs for the confirmed prefix until the MQTT connection is lost."""
        while not self._lost:
            await self._ack_confirmed()

    async def _ack_confirmed(self) -> None:
        """Wait for the oldest write (or news), then ack every confirmed message in order."""
        head = self.window.head()
        if head is None:
            self._wake.clear()
            await self._wake.wait()
            return
        if not head.write.done():
            self._wake.clear()
            woke = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((head.write, woke), return_when=asyncio.FIRST_COMPLETED)
            finally:
                woke.cancel()
        if self._lost:
            return
        ready = self.window.pop_ready()
        if not ready:
            return
        source = self._source
        assert source is not None
        metrics = self.metrics
        now = time.monotonic()
        for entry in ready:
            source.ack(entry.mid, entry.qos)
            if entry.reason is None:
                metrics.produced += 1
            else:
                metrics.deadlettered[entry.reason] += 1
            metrics.latency.observe(now - entry.received_s)
        metrics.acked += sum(1 for e in ready if e.qos)
        metrics.in_flight = len(self.window)
        if len(self.window) <= self.settings.max_inflight // 2 and not self._stopped:
            source.resume()

    # --- recovery -------------------------------------------------------------------------------
    async def _recover(self, kafka_failed: bool) -> None:
        """Drop the MQTT session's unacked messages back to the broker, rebuild, reconnect."""
        source = self._source
        assert source is not None
        source.pause()
        self.metrics.mqtt_connected = False
        await source.disconnect()
        released = self._release()
        log.info("released unacked messages to the broker", extra={"released": released})
        if kafka_failed:
            await self._close_kafka()
            await self._open_kafka()
        self._lost = False
        await source.connect()
        self.metrics.mqtt_connected = True
        source.resume()

    def _release(self) -> int:
        released = len(self.window.release())
        self.metrics.released += released
        self.metrics.in_flight = 0
        return released

    async def _open_kafka(self) -> None:
        """Start the producer and check the topics, retrying with backoff while Kafka is away."""
        delay = 0.2
        while True:
            try:
                partitions = await self._topic_partitions()
                producer = await start_producer(
                    self.kafka,
                    role="bridge",
                    max_batch_size=self.settings.batch_bytes,
                    compression_type=None
                    if self.settings.compression == "none"
                    else self.settings.compression,
                    max_request_size=2 * 1024 * 1024,
                )
                break
            except (KafkaError, OSError) as exc:
                log.warning(
                    "Kafka unavailable, retrying",
                    extra={"bootstrap": self.kafka.bootstrap, "error": repr(exc), "in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
        self._producer = producer
        self._batcher = Batcher(producer, partitions, self.settings.linger_ms / 1000)

    async def _topic_partitions(self) -> dict[str, int]:
        """{topic: partitions}; a missing topic is a ConfigError."""
        return await require_topics(self.kafka, self.topics)

    async def _close_kafka(self) -> None:
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            await batcher.close()
        producer, self._producer = self._producer, None
        if producer is not None:
            # stop() flushes what is queued; with the broker gone that would wait out every
            # retry, and those messages are unacked anyway (the broker redelivers them).
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(producer.stop(), timeout=5)

    def _summary(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "received": m.received,
            "produced": m.produced,
            "deadlettered": m.deadlettered_total,
            "released": m.released,
            "kafka_errors": m.kafka_errors,
        }
