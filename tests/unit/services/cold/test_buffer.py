"""Partition buffers and every flush trigger."""

import pytest

from services.cold.buffer import NO_RECEIVED, RECORD_OVERHEAD, PartitionBuffer, Records, Triggers, received_ms
from tests.unit.services.cold.support import Rec

TRIGGERS = Triggers(rows=100, bytes=100_000, span_ms=60_000, idle_s=5.0)


def _recs(n, first=0, size=10, kafka_ts=0, step_ms=0):
    return [Rec(first + i, b"x" * size, b"k", kafka_ts + i * step_ms) for i in range(n)]


def test_an_empty_buffer_is_never_due():
    buffer = PartitionBuffer("t", 0, "engine")
    assert buffer.due(TRIGGERS, now_s=1e9) is None


def test_nothing_is_due_below_every_threshold():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(10), now_s=100.0)
    assert buffer.due(TRIGGERS, now_s=104.9) is None


def test_rows_trigger():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(99), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) is None
    buffer.add(_recs(1, first=99), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) == "rows"


def test_bytes_trigger_counts_values_keys_and_per_record_overhead():
    buffer = PartitionBuffer("t", 0, "engine")
    size = 100_000 // 2 - RECORD_OVERHEAD - len(b"k")
    buffer.add(_recs(1, size=size), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) is None
    buffer.add(_recs(1, first=1, size=size), now_s=0.0)
    assert buffer.nbytes == 100_000
    assert buffer.due(TRIGGERS, 0.0) == "bytes"


def test_span_trigger_uses_kafka_record_time_not_the_wall_clock():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(2, kafka_ts=1_000, step_ms=59_999), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) is None
    buffer.add(_recs(1, first=2, kafka_ts=61_000), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) == "span"


def test_span_counts_a_record_older_than_the_first():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(1, kafka_ts=100_000), now_s=0.0)
    buffer.add(_recs(1, first=1, kafka_ts=40_000), now_s=0.0)
    assert buffer.due(TRIGGERS, 0.0) == "span"


def test_idle_trigger_after_no_record_for_idle_s():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(1), now_s=10.0)
    assert buffer.due(TRIGGERS, 14.9) is None
    buffer.add(_recs(1, first=1), now_s=14.9)  # a new record restarts the idle clock
    assert buffer.due(TRIGGERS, 19.8) is None
    assert buffer.due(TRIGGERS, 20.0) == "idle"


def test_take_empties_and_restore_puts_back_in_front():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add(_recs(3), now_s=0.0)
    taken = buffer.take()
    assert len(buffer) == 0 and len(taken) == 3
    buffer.add(_recs(2, first=3), now_s=0.0)
    buffer.restore(taken)
    r = buffer.records
    assert list(r.offsets) == [0, 1, 2, 3, 4] and len(r.lines()) == 5
    assert (r.value_bytes, r.key_bytes, r.nbytes) == (50, 5, 55 + 5 * RECORD_OVERHEAD)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("mqtt_topic", b"fleet/x/engine"), ("received_ms", b"1795000000123")), 1_795_000_000_123),
        ((("mqtt_topic", b"x"),), NO_RECEIVED),
        ((("received_ms", b"soon"),), NO_RECEIVED),
        ((("received_ms", b"99999999999999999999"),), NO_RECEIVED),  # beyond int64: not a crash
        ((("received_ms", b"-5"),), NO_RECEIVED),
        ((), NO_RECEIVED),
    ],
)
def test_received_ms_header(headers, expected):
    assert received_ms(headers) == expected


def test_records_keep_values_keys_and_columns_without_a_python_object_per_record():
    recs = [
        Rec(7, b'{"a":1}', b"VIN1", 100, (("received_ms", b"5"),)),
        Rec(8, None, None, 90),  # a tombstone without key or header
        Rec(9, b"", b"", 110, (("received_ms", b"x"),)),
    ]
    records = Records()
    assert records.append(recs) == (90, 110)
    assert list(records.lines()) == [b'{"a":1}', b"", b""]
    assert records.lines().data == b'{"a":1}\n\n\n'
    assert records.keys() == [b"VIN1", None, b""]
    assert list(records.received) == [5, NO_RECEIVED, NO_RECEIVED]
    assert list(records.timestamps) == [100, 90, 110]
    assert records.nbytes == 7 + 4 + 3 * RECORD_OVERHEAD


def test_the_garbage_collector_walks_a_reference_per_add_not_per_record():
    import gc

    records = Records()
    for first in range(0, 10_000, 1_000):
        records.append(_recs(1_000, first=first))
    walked = sum(len(gc.get_referents(v)) for v in vars(records).values())
    assert len(records) == 10_000 and walked <= 2 * 10 + 10


def test_a_received_ms_header_beyond_int64_is_kept_as_missing():
    buffer = PartitionBuffer("t", 0, "engine")
    buffer.add([Rec(0, b"{}", b"k", 0, (("received_ms", b"1" * 30),))], now_s=0.0)
    assert list(buffer.records.received) == [NO_RECEIVED]
