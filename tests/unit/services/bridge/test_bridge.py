"""The Bridge's message and ack path with fakes at both ports: no Mosquitto, no Kafka.

A Bridge is built as usual, then given a Batcher over `FakeProducer` and a `FakeSource` in
place of what `start()` would connect (aiokafka and paho). Messages go in through
`_on_message` as paho would deliver them; tests settle Kafka futures in any order and run the
ack loop one step at a time with `_ack_confirmed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import paho.mqtt.client as mqtt
import pytest
from aiokafka.errors import KafkaError

import services.bridge.bridge as bridge_module
from services.bridge.batcher import Batcher
from services.bridge.bridge import Bridge
from services.bridge.settings import BridgeSettings
from services.bridge.window import WriteFailed
from services.common.partitioning import partition_for
from services.common.settings import KafkaSettings, MqttSettings
from tests.unit.services.bridge import FakeProducer, FakeSource, SentBatch, fresh_frames, spin, until

PARTITIONS = 3
ENGINE = "telemetry.engine"


@dataclasses.dataclass
class Rig:
    bridge: Bridge
    producer: FakeProducer
    source: FakeSource

    def feed(self, mid: int, topic: str, payload: bytes, qos: int = 1) -> None:
        """One PUBLISH as paho hands it over."""
        message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
        message.payload = payload
        message.qos = qos
        self.bridge._on_message(message)

    def batch_on(self, partition: int) -> SentBatch:
        (batch,) = [b for b in self.producer.batches if (b.topic, b.partition) == (ENGINE, partition)]
        return batch

    @property
    def acked_mids(self) -> list[int]:
        return [mid for mid, _ in self.source.acks]


@pytest.fixture
async def rig():
    batchers: list[Batcher] = []

    def make(max_inflight: int = 100, budget: int = 1 << 20, auto_drain: bool = True) -> Rig:
        bridge = Bridge(BridgeSettings(max_inflight=max_inflight), KafkaSettings(), MqttSettings())
        producer = FakeProducer(budget, auto_drain=auto_drain)
        bridge._batcher = Batcher(producer, {topic: PARTITIONS for topic in bridge.topics})
        batchers.append(bridge._batcher)
        bridge._source = source = FakeSource()  # type: ignore[assignment]
        return Rig(bridge, producer, source)

    yield make
    for batcher in batchers:
        await batcher.close()


@pytest.fixture(scope="module")
def engine():
    """Two ticks of engine frames of two cars whose VINs land on different partitions."""
    frames = fresh_frames(cars=12, ticks=2)
    by_vin: dict[str, list[bytes]] = {}
    for vin, subsystem, payload in frames:
        if subsystem == "engine":
            by_vin.setdefault(vin, []).append(payload)
    partition = {vin: partition_for(vin.encode(), PARTITIONS) for vin in by_vin}
    a = next(iter(by_vin))
    b = next(vin for vin in by_vin if partition[vin] != partition[a])
    return {
        "a": (f"fleet/{a}/engine", by_vin[a], partition[a]),
        "b": (f"fleet/{b}/engine", by_vin[b], partition[b]),
    }


async def test_acks_leave_in_arrival_order_while_kafka_confirms_out_of_order(rig, engine):
    r = rig()
    topic_a, payloads_a, part_a = engine["a"]
    topic_b, payloads_b, part_b = engine["b"]
    r.feed(1, topic_a, payloads_a[0])
    r.feed(2, topic_b, payloads_b[0])
    r.feed(3, topic_a, payloads_a[1])
    r.feed(4, topic_a, b"{not json")
    m = r.bridge.metrics
    assert (m.received, m.in_flight) == (4, 0)  # in_flight is refreshed per burst
    r.bridge._on_burst()
    assert m.in_flight == 4 and m.balanced()
    await until(lambda: len(r.producer.batches) == 2 and len(r.producer.records) == 1)
    batch_a, batch_b, dead = r.batch_on(part_a), r.batch_on(part_b), r.producer.records[0]
    assert batch_a.builder.values == payloads_a  # car A's two frames share one batch, in order
    assert dead.value == b"{not json"

    dead.future.set_result(None)  # the newest message is confirmed first
    ack = asyncio.create_task(r.bridge._ack_confirmed())
    await spin()
    assert not ack.done()  # the ack loop waits for the oldest write
    assert r.source.acks == []

    batch_a.future.set_result(None)  # confirms 1 and 3; 2 still blocks 3
    await ack
    assert r.source.acks == [(1, 1)]
    assert (m.produced, m.acked, m.in_flight, m.deadlettered_total) == (1, 1, 3, 0)
    assert m.balanced()

    batch_b.future.set_result(None)
    await r.bridge._ack_confirmed()
    assert r.acked_mids == [1, 2, 3, 4]
    assert (m.produced, m.acked, m.in_flight, dict(m.deadlettered)) == (3, 4, 0, {"parse_error": 1})
    assert m.latency.count == 4
    assert m.balanced()
    assert len(r.bridge.window) == 0


async def test_records_carry_the_frame_bytes_key_and_topic_headers(rig, engine):
    r = rig()
    topic, payloads, partition = engine["a"]
    r.feed(7, topic, payloads[0])
    r.feed(8, "fleet/bad/engine", payloads[0])
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 1 and len(r.producer.records) == 1)
    ((key, value, headers),) = r.batch_on(partition).builder.records
    assert (key, value) == (topic.split("/")[1].encode(), payloads[0])
    assert dict(headers)["mqtt_topic"] == topic.encode()
    dead = r.producer.records[0]
    assert (dead.topic, dead.key, dead.value) == ("telemetry.deadletter", None, payloads[0])
    assert dict(dead.headers)["dlq_reason"] == b"bad_vin"


async def test_nothing_goes_to_kafka_before_the_burst_ends(rig, engine):
    r = rig()
    topic, payloads, _ = engine["a"]
    r.feed(1, topic, payloads[0])
    await spin()
    assert r.producer.entered == []
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 1)


async def test_reading_pauses_at_max_inflight_and_resumes_at_half(rig, engine):
    r = rig(max_inflight=4, budget=1)  # one record per batch: one future per message
    topic, payloads, _ = engine["a"]
    for mid in (1, 2, 3):
        r.feed(mid, topic, payloads[0])
    assert (r.source.paused, r.bridge.metrics.paused) == (False, 0)
    r.feed(4, topic, payloads[1])
    assert (r.source.paused, r.bridge.metrics.paused) == (True, 1)
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 4)

    r.producer.batches[0].future.set_result(None)
    await r.bridge._ack_confirmed()
    assert r.acked_mids == [1]
    assert (r.source.paused, r.source.resumes) == (True, 0)  # 3 in flight > 4 // 2

    r.producer.batches[1].future.set_result(None)
    await r.bridge._ack_confirmed()
    assert r.acked_mids == [1, 2]
    assert (r.source.paused, r.bridge.metrics.in_flight) == (False, 2)
    assert r.bridge.metrics.balanced()


async def test_a_failed_write_acks_the_prefix_then_raises_and_release_balances(rig, engine):
    r = rig()
    topic_a, payloads_a, part_a = engine["a"]
    topic_b, payloads_b, part_b = engine["b"]
    r.feed(1, topic_a, payloads_a[0])
    r.feed(2, topic_a, b"")  # dead letter
    r.feed(3, topic_b, payloads_b[0])
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 2 and len(r.producer.records) == 1)
    cause = KafkaError("NotEnoughReplicas")
    r.batch_on(part_b).future.set_result(None)
    r.producer.records[0].future.set_exception(cause)
    r.batch_on(part_a).future.set_result(None)

    await r.bridge._ack_confirmed()
    assert r.acked_mids == [1]
    with pytest.raises(WriteFailed) as info:
        await r.bridge._ack_confirmed()
    assert info.value.cause is cause
    assert r.acked_mids == [1]  # 3 is in Kafka but must not be acked past the failure

    assert r.bridge._release() == 2
    m = r.bridge.metrics
    assert (m.produced, m.released, m.in_flight, m.deadlettered_total) == (1, 2, 0, 0)
    assert m.balanced()


async def test_qos0_messages_count_as_produced_but_not_as_pubacks(rig, engine):
    r = rig()
    topic, payloads, _ = engine["a"]
    r.feed(0, topic, payloads[0], qos=0)
    r.feed(5, topic, payloads[1], qos=1)
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 1)
    r.producer.batches[0].future.set_result(None)
    await r.bridge._ack_confirmed()
    assert r.source.acks == [(0, 0), (5, 1)]  # MqttSource.ack ignores QoS0 itself
    assert (r.bridge.metrics.produced, r.bridge.metrics.acked) == (2, 1)


async def test_an_empty_window_waits_for_the_next_burst(rig, engine):
    r = rig()
    ack = asyncio.create_task(r.bridge._ack_confirmed())
    await spin()
    assert not ack.done()
    topic, payloads, _ = engine["a"]
    r.feed(1, topic, payloads[0])
    r.bridge._on_burst()
    await until(ack.done)
    assert r.source.acks == []  # woken by the burst; its write is not confirmed yet


async def test_nothing_is_acked_once_the_connection_is_lost(rig, engine):
    r = rig()
    topic, payloads, _ = engine["a"]
    r.feed(1, topic, payloads[0])
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 1)
    r.producer.batches[0].future.set_result(None)
    r.bridge.metrics.mqtt_connected = True

    r.bridge._on_lost("keepalive timeout")
    await r.bridge._ack_confirmed()
    assert r.source.acks == []  # a PUBACK on a dead connection would be lost; the broker redelivers
    assert len(r.bridge.window) == 1
    m = r.bridge.metrics
    assert (m.mqtt_disconnects, m.mqtt_connected) == (1, False)


async def test_a_lost_connection_releases_the_window_and_reconnects(rig, engine):
    r = rig()
    topic, payloads, _ = engine["a"]
    waiting = asyncio.create_task(r.bridge.wait())
    try:
        r.feed(1, topic, payloads[0])
        r.feed(2, topic, payloads[1])
        r.bridge._on_burst()
        await until(lambda: len(r.producer.batches) == 1)
        r.bridge._on_lost("connection reset")
        await until(lambda: r.source.connects == 1)
        await spin()
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    m = r.bridge.metrics
    assert r.source.acks == []
    assert (m.released, m.in_flight, m.mqtt_connected, m.kafka_errors) == (2, 0, True, 0)
    assert m.balanced()
    assert r.source.paused is False
    assert r.source.paused_at_disconnect == [True]


async def test_a_kafka_failure_in_wait_rebuilds_the_producer(rig, engine, monkeypatch):
    r = rig()
    topic, payloads, _ = engine["a"]
    old_batcher = r.bridge._batcher
    fresh = FakeProducer(auto_drain=True)

    async def open_kafka() -> None:  # stands in for starting a real AIOKafkaProducer
        r.bridge._batcher = Batcher(fresh, {t: PARTITIONS for t in r.bridge.topics})

    monkeypatch.setattr(r.bridge, "_open_kafka", open_kafka)
    waiting = asyncio.create_task(r.bridge.wait())
    try:
        r.feed(1, topic, payloads[0])
        r.bridge._on_burst()
        await until(lambda: len(r.producer.batches) == 1)
        r.producer.batches[0].future.set_exception(KafkaError("leader gone"))
        await until(lambda: r.source.connects == 1)
        assert r.bridge._batcher is not old_batcher

        r.feed(2, topic, payloads[1])  # the next message goes to the new producer
        r.bridge._on_burst()
        await until(lambda: len(fresh.batches) == 1)
        fresh.batches[0].future.set_result(None)
        await until(lambda: r.source.acks == [(2, 1)])
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        if r.bridge._batcher is not None:
            await r.bridge._batcher.close()
    m = r.bridge.metrics
    assert (m.kafka_errors, m.released, m.produced, m.received) == (1, 1, 1, 2)
    assert m.balanced()


async def test_stop_acks_what_kafka_confirmed_and_releases_the_rest(rig, engine, monkeypatch):
    monkeypatch.setattr(bridge_module, "STOP_GRACE_S", 0.05)
    r = rig()
    topic_a, payloads_a, part_a = engine["a"]
    topic_b, payloads_b, part_b = engine["b"]
    r.feed(1, topic_a, payloads_a[0])
    r.feed(2, topic_b, payloads_b[0])
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 2)
    r.batch_on(part_a).future.set_result(None)

    await r.bridge.stop()
    await r.bridge.stop()  # safe twice

    assert r.source.acks == [(1, 1)]
    assert len(r.source.paused_at_disconnect) == 1
    assert r.bridge._batcher is None
    m = r.bridge.metrics
    assert (m.produced, m.released, m.in_flight, m.mqtt_connected) == (1, 1, 0, False)
    assert m.balanced()


async def test_stop_does_not_read_new_messages_during_its_grace_period(rig, engine, monkeypatch):
    monkeypatch.setattr(bridge_module, "STOP_GRACE_S", 0.05)
    r = rig()
    topic_a, payloads_a, part_a = engine["a"]
    topic_b, payloads_b, _ = engine["b"]
    r.feed(1, topic_a, payloads_a[0])
    r.feed(2, topic_b, payloads_b[0])
    r.bridge._on_burst()
    await until(lambda: len(r.producer.batches) == 2)
    r.batch_on(part_a).future.set_result(None)

    await r.bridge.stop()

    assert r.source.paused_at_disconnect == [True]
