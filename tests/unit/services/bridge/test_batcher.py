"""The batcher against an in-memory producer: partition lanes, order, hand-over, failures, close."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaError

from services.bridge.batcher import Batcher
from services.bridge.routing import Record
from services.common.partitioning import partition_for
from simulators.fleet import vin_for
from tests.unit.services.bridge import FakeProducer, spin, until

TOPIC = "telemetry.engine"
DEADLETTER = "telemetry.deadletter"
PARTITIONS = {TOPIC: 6, "telemetry.chassis": 3, DEADLETTER: 6}
VIN = vin_for(1).encode()
P = partition_for(VIN, 6)


def record(value: bytes, key: bytes | None = VIN, topic: str = TOPIC, reason: str | None = None) -> Record:
    return Record(topic, key, value, [("mqtt_topic", b"fleet/x/engine")], reason)


def per_batch(n: int, value_len: int = 2) -> int:
    """A byte budget that holds exactly n records of VIN + a value of `value_len` bytes."""
    return n * (len(VIN) + value_len)


def lane_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("lane ")]


@pytest.fixture
async def make_batcher():
    made: list[Batcher] = []

    def make(producer: FakeProducer, linger_s: float = 0.0) -> Batcher:
        batcher = Batcher(producer, PARTITIONS, linger_s)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        await batcher.close()


async def test_records_of_one_partition_keep_their_order_across_batches(make_batcher):
    producer = FakeProducer(per_batch(2))
    batcher = make_batcher(producer)
    values = [f"r{i}".encode() for i in range(7)]
    writes = [batcher.add(record(v)) for v in values]
    batcher.flush()
    for _ in range(4):  # let each batch drain so the next one may be handed over
        await asyncio.wait_for(producer.accepted.wait(), timeout=1)
        producer.accepted.clear()
        producer.batches[-1].drained.set()

    assert producer.batch_values() == [[b"r0", b"r1"], [b"r2", b"r3"], [b"r4", b"r5"], [b"r6"]]
    assert {(b.topic, b.partition) for b in producer.batches} == {(TOPIC, P)}
    # one future per batch, shared by its records
    assert writes[0] is writes[1] and writes[2] is writes[3] and writes[4] is writes[5]
    assert len({id(w) for w in writes}) == 4

    producer.batches[2].future.set_result(None)  # Kafka confirms the third batch first
    await until(lambda: writes[4].done())
    assert [w.done() for w in writes] == [False, False, False, False, True, True, False]


async def test_a_full_batch_rolls_to_a_new_one_and_both_are_sent_in_order(make_batcher):
    producer = FakeProducer(per_batch(1), auto_drain=True)
    batcher = make_batcher(producer)
    first = batcher.add(record(b"r0"))
    second = batcher.add(record(b"r1"))  # does not fit: the first batch is closed, a new one takes it
    assert first is not second
    batcher.flush()
    await until(lambda: len(producer.batches) == 2)
    assert producer.batch_values() == [[b"r0"], [b"r1"]]
    assert all(b.builder.closed for b in producer.batches)

    producer.batches[1].future.set_result(None)
    producer.batches[0].future.set_result(None)
    await until(lambda: first.done() and second.done())
    assert first.result() is None and second.result() is None


async def test_partition_is_the_java_murmur2_of_the_key(make_batcher):
    producer = FakeProducer(auto_drain=True)
    batcher = make_batcher(producer)
    vins = [vin_for(i).encode() for i in range(40)]
    for vin in vins:
        batcher.add(record(vin, key=vin))
        batcher.add(record(vin, key=vin, topic="telemetry.chassis"))  # 3 partitions there
    batcher.flush()
    await until(lambda: sum(b.builder.record_count() for b in producer.batches) == 80)

    for batch in producer.batches:
        count = PARTITIONS[batch.topic]
        keys = [key for key, _, _ in batch.builder.records]
        assert all(key is not None and partition_for(key, count) == batch.partition for key in keys)
    assert {b.partition for b in producer.batches if b.topic == TOPIC} == set(range(6))
    assert {b.partition for b in producer.batches if b.topic == "telemetry.chassis"} == set(range(3))


async def test_nothing_is_handed_over_until_flush_wakes_the_lane(make_batcher):
    producer = FakeProducer(auto_drain=True)
    batcher = make_batcher(producer)
    batcher.add(record(b"r0"))
    await spin()
    assert producer.entered == []

    batcher.flush()
    await until(lambda: len(producer.batches) == 1)
    batcher.add(record(b"r1"))
    await spin()
    assert len(producer.batches) == 1  # a new open batch waits for the next flush

    batcher.flush()
    await until(lambda: len(producer.batches) == 2)
    assert producer.batch_values() == [[b"r0"], [b"r1"]]


async def test_the_next_batch_of_a_lane_waits_until_send_batch_returned(make_batcher):
    producer = FakeProducer()
    batcher = make_batcher(producer)
    batcher.add(record(b"r0"))
    batcher.flush()
    await until(lambda: len(producer.batches) == 1)  # queued in aiokafka, not yet drained

    batcher.add(record(b"r1"))
    batcher.flush()
    await until(lambda: len(producer.entered) == 2)  # handed over; aiokafka holds the call
    batcher.add(record(b"r2"))
    batcher.add(record(b"r3"))
    batcher.flush()
    await spin()
    # the fake asserts no second concurrent call for the partition; r2, r3 wait in a new batch
    assert len(producer.entered) == 2
    assert producer.batch_values() == [[b"r0"]]

    producer.batches[0].drained.set()
    await until(lambda: len(producer.entered) == 3)
    assert producer.batch_values() == [[b"r0"], [b"r1"]]
    producer.batches[1].drained.set()
    await until(lambda: len(producer.batches) == 3)
    assert producer.batch_values() == [[b"r0"], [b"r1"], [b"r2", b"r3"]]  # grew while r1 waited


async def test_lanes_of_different_partitions_do_not_wait_for_each_other(make_batcher):
    producer = FakeProducer()
    batcher = make_batcher(producer)
    other = next(vin_for(i).encode() for i in range(100) if partition_for(vin_for(i).encode(), 6) != P)
    batcher.add(record(b"a0"))
    batcher.flush()
    await until(lambda: len(producer.batches) == 1)
    batcher.add(record(b"a1"))  # waits behind a0
    batcher.add(record(b"b0", key=other))
    batcher.flush()
    await until(lambda: len(producer.batches) == 2)
    assert producer.batches[1].builder.values == [b"b0"]
    assert producer.batches[1].partition == partition_for(other, 6)


async def test_dead_letters_go_through_send_not_the_lanes(make_batcher):
    producer = FakeProducer(auto_drain=True)
    batcher = make_batcher(producer)
    dead = record(b"{broken", key=None, topic=DEADLETTER, reason="parse_error")
    write = batcher.add(dead)
    batcher.flush()
    await until(lambda: len(producer.records) == 1)
    await spin()
    assert producer.entered == []
    sent = producer.records[0]
    assert (sent.topic, sent.value, sent.key, sent.headers) == (DEADLETTER, b"{broken", None, dead.headers)

    assert not write.done()
    sent.future.set_result(None)
    await until(write.done)
    assert write.result() is None


async def test_a_dead_letter_write_failure_fails_its_future(make_batcher):
    producer = FakeProducer()
    batcher = make_batcher(producer)
    refused = KafkaError("queue full")
    producer.fail_send = refused
    first = batcher.add(record(b"a", topic=DEADLETTER, reason="bad_vin"))
    second = batcher.add(record(b"b", topic=DEADLETTER, reason="bad_vin"))
    await until(lambda: first.done() and len(producer.records) == 1)
    assert first.exception() is refused

    lost = KafkaError("not enough replicas")
    producer.records[0].future.set_exception(lost)
    await until(second.done)
    assert second.exception() is lost


async def test_a_kafka_error_from_send_batch_fails_that_batch_and_the_lane_goes_on(make_batcher):
    producer = FakeProducer(per_batch(1), auto_drain=True)
    batcher = make_batcher(producer)
    refused = KafkaError("producer closed")
    producer.fail_send_batch = refused
    failed = batcher.add(record(b"r0"))
    later = batcher.add(record(b"r1"))
    batcher.flush()
    await until(lambda: failed.done() and len(producer.batches) == 1)
    assert failed.exception() is refused
    assert producer.batch_values() == [[b"r1"]]
    assert not later.done()


@pytest.mark.parametrize("outcome", ["error", "cancel"])
async def test_a_failed_kafka_ack_fails_the_batch_future(make_batcher, outcome):
    producer = FakeProducer(auto_drain=True)
    batcher = make_batcher(producer)
    write = batcher.add(record(b"r0"))
    batcher.flush()
    await until(lambda: len(producer.batches) == 1)
    error = KafkaError("request timed out")
    if outcome == "error":
        producer.batches[0].future.set_exception(error)
    else:
        producer.batches[0].future.cancel()
    await until(write.done)
    if outcome == "error":
        assert write.exception() is error
    else:
        assert write.cancelled()


async def test_close_fails_batches_never_handed_over_and_stops_the_lanes(make_batcher):
    producer = FakeProducer(per_batch(1))
    batcher = make_batcher(producer)
    sent = batcher.add(record(b"r0"))
    batcher.flush()
    await until(lambda: len(producer.batches) == 1)
    closed = batcher.add(record(b"r1"))  # no flush: one full batch and one open batch stay with us
    still_open = batcher.add(record(b"r2"))
    assert [t.get_name() for t in lane_tasks()] == [f"lane {TOPIC}[{P}]"]

    await batcher.close()

    assert lane_tasks() == []
    for write in (closed, still_open):
        assert isinstance(write.exception(), KafkaError)
        assert "stopped before the batch was sent" in str(write.exception())
    assert not sent.done()  # handed over: aiokafka settles it
    producer.batches[0].future.set_result(None)
    await until(sent.done)
    assert sent.result() is None
    assert producer.batch_values() == [[b"r0"]]


async def test_close_fails_the_batch_whose_hand_over_was_waiting(make_batcher):
    producer = FakeProducer()
    batcher = make_batcher(producer)
    batcher.add(record(b"r0"))
    batcher.flush()
    await until(lambda: len(producer.batches) == 1)
    waiting = batcher.add(record(b"r1"))
    batcher.flush()
    await until(lambda: len(producer.entered) == 2)  # held by aiokafka behind r0

    await batcher.close()

    assert waiting.done()


async def test_linger_delays_the_hand_over_and_lets_the_batch_grow(make_batcher):
    linger_s = 0.05
    producer = FakeProducer(auto_drain=True)
    batcher = make_batcher(producer, linger_s=linger_s)
    loop = asyncio.get_running_loop()
    batcher.add(record(b"r0"))
    batcher.flush()
    started = loop.time()
    await spin()
    assert producer.entered == []
    batcher.add(record(b"r1"))  # arrives during the linger: same batch

    await asyncio.wait_for(producer.accepted.wait(), timeout=2)
    assert loop.time() - started >= linger_s
    assert producer.batch_values() == [[b"r0", b"r1"]]
