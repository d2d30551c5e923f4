"""One topic partition's buffered records and the triggers that flush them.

Records are kept raw (value bytes, offset, key, Kafka timestamp, received_ms) and decoded at
flush time: one large batch decodes far faster than many small ones (services/cold/decode.py),
and a partition is flushed as a whole anyway, so its hour buckets are only needed then.

    buffer = PartitionBuffer("telemetry.engine", 3, "engine")
    buffer.add(record, now_s=time.monotonic())
    buffer.due(triggers, now_s)        # "rows" | "bytes" | "span" | "idle" | None
    records = buffer.take()            # detach everything buffered; the buffer is empty again

Triggers, per partition (all of a partition's hour buckets flush together, one file each):
rows and bytes bound the file size and memory; span bounds how much *record time* (the
Kafka timestamp, which replay preserves, unlike the wall clock) a file holds; idle makes a
partition that stopped receiving queryable after a few seconds. Event time (the frame's
`ts`) never triggers anything: a car replaying yesterday's frames adds an hour bucket to the
next flush, not a flush of its own, so late frames cannot cause a storm of tiny files;
compaction later merges each closed hour's files.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Sequence
from operator import attrgetter
from typing import Final, Literal, Protocol

from services.cold.decode import MAX_TS_MS, Lines

Trigger = Literal["rows", "bytes", "span", "idle", "catch-up", "memory", "revoke", "shutdown"]
TRIGGERS: tuple[Trigger, ...] = ("rows", "bytes", "span", "idle", "catch-up", "memory", "revoke", "shutdown")

# Memory a buffered record costs besides its value's and key's bytes, for the memory budget: five
# int64 columns (offset, Kafka timestamp, received_ms, value and key lengths) and the newline
# after its value. Exact: the columns are arrays and the values one `bytes` per add.
RECORD_OVERHEAD: Final = 5 * 8 + 1
NO_RECEIVED: Final = -(2**63)  # a record without a usable `received_ms` header
NO_KEY: Final = -1  # key length of a record without a key

_OFFSET, _VALUE, _KEY = attrgetter("offset"), attrgetter("value"), attrgetter("key")
_TIMESTAMP, _HEADERS = attrgetter("timestamp"), attrgetter("headers")


class KafkaRecord(Protocol):
    """What the buffer reads from a consumed record (aiokafka's ConsumerRecord has it)."""

    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclasses.dataclass(frozen=True)
class Triggers:
    """Flush thresholds of one partition buffer."""

    rows: int
    bytes: int
    span_ms: int
    idle_s: float


def _int64s() -> array[int]:
    return array("q")


@dataclasses.dataclass
class Records:
    """Buffered records as columns, in offset order, held where the garbage collector never looks.

    Numbers are `array("q")` columns and the values are newline-terminated lines, one `bytes` per
    add (what pyarrow.json reads at the flush, services/cold/decode.py); keys likewise, without
    separators. None of these holds a reference per record for the collector to walk. Lists per
    column did, and every full collection (the objects aiokafka creates per record trigger them)
    walked every buffered record: a bare aiokafka consumer keeping what this buffer keeps, in
    lists, read a 500k-record backlog in 3.1-3.4 s, in 2.0 s with the collector off. The cold
    writer on one Tansu, old and new alternated: 500k records 7.5-7.8 s -> 6.2-6.5 s, 2M records
    20.5 s -> 14.1-14.9 s (its CPU time 18.4-18.8 s -> 12.0-12.9 s). A record also costs 41 B
    besides its value and key instead of ~216 B.
    """

    offsets: array[int] = dataclasses.field(default_factory=_int64s)
    timestamps: array[int] = dataclasses.field(default_factory=_int64s)
    received: array[int] = dataclasses.field(default_factory=_int64s)  # NO_RECEIVED: none
    value_lengths: array[int] = dataclasses.field(default_factory=_int64s)
    value_chunks: list[bytes] = dataclasses.field(default_factory=list)  # lines, one chunk per add
    key_lengths: array[int] = dataclasses.field(default_factory=_int64s)  # NO_KEY: none
    key_chunks: list[bytes] = dataclasses.field(default_factory=list)
    value_bytes: int = 0
    key_bytes: int = 0

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def nbytes(self) -> int:
        """Memory held, as the budget counts it."""
        return self.value_bytes + self.key_bytes + RECORD_OVERHEAD * len(self.offsets)

    def append(self, records: Sequence[KafkaRecord]) -> tuple[int, int]:
        """Append consumed records (in offset order); returns their lowest and highest Kafka timestamp.

        Per column one pass in C (map over an attrgetter) where it can: ~0.15 us per record.
        """
        values: list[bytes] = list(map(_VALUE, records))
        if None in values:  # a tombstone: an empty line, rejected at the flush
            values = [v if v is not None else b"" for v in values]
        self.value_lengths.extend(map(len, values))
        values.append(b"")  # the last value's newline
        lines = b"\n".join(values)
        self.value_chunks.append(lines)
        self.value_bytes += len(lines) - len(records)
        keys: list[bytes | None] = list(map(_KEY, records))
        if None in keys:
            self.key_lengths.extend(NO_KEY if k is None else len(k) for k in keys)
            keys = [k for k in keys if k is not None]
        else:
            self.key_lengths.extend(map(len, keys))  # type: ignore[arg-type]
        joined_keys = b"".join(keys)  # type: ignore[arg-type]
        self.key_chunks.append(joined_keys)
        self.key_bytes += len(joined_keys)
        stamps = array("q", map(_TIMESTAMP, records))
        self.timestamps += stamps
        self.offsets.extend(map(_OFFSET, records))
        self.received.extend(map(received_ms, map(_HEADERS, records)))
        return min(stamps), max(stamps)

    def extend(self, newer: Records) -> None:
        """Append records that follow these."""
        self.offsets += newer.offsets
        self.timestamps += newer.timestamps
        self.received += newer.received
        self.value_lengths += newer.value_lengths
        self.value_chunks += newer.value_chunks
        self.key_lengths += newer.key_lengths
        self.key_chunks += newer.key_chunks
        self.value_bytes += newer.value_bytes
        self.key_bytes += newer.key_bytes

    def lines(self) -> Lines:
        """The values as newline-terminated lines of one buffer."""
        return Lines(b"".join(self.value_chunks), self.value_lengths)

    def keys(self) -> list[bytes | None]:
        """Every key, in order (the rare reject path needs them)."""
        data, at = b"".join(self.key_chunks), 0
        out: list[bytes | None] = []
        for length in self.key_lengths:
            if length == NO_KEY:
                out.append(None)
            else:
                out.append(data[at : at + length])
                at += length
        return out


def received_ms(headers: Sequence[tuple[str, bytes]]) -> int:
    """The bridge's `received_ms` header as an int; NO_RECEIVED when absent, not a number, or not
    a time the lake can hold (1970..9999: another producer's header must not stop the writer)."""
    for key, value in headers:
        if key == "received_ms":
            try:
                stamp = int(value)
            except (TypeError, ValueError):
                return NO_RECEIVED
            return stamp if 0 <= stamp <= MAX_TS_MS else NO_RECEIVED
    return NO_RECEIVED


class PartitionBuffer:
    """Records of one topic partition waiting for a flush."""

    def __init__(self, topic: str, partition: int, kind: str):
        self.topic = topic
        self.partition = partition
        self.kind = kind
        self.records = Records()
        self.min_ts = 0  # Kafka timestamps (ms) of the buffered records
        self.max_ts = 0
        self.last_add_s = 0.0  # monotonic time of the newest add

    def __len__(self) -> int:
        return len(self.records)

    @property
    def nbytes(self) -> int:
        """Memory held by the buffered records."""
        return self.records.nbytes

    def add(self, records: Sequence[KafkaRecord], now_s: float) -> int:
        """Append records (in offset order); returns how many were added."""
        if not records:
            return 0
        lo, hi = self.records.append(records)
        if len(self.records) > len(records):
            lo, hi = min(lo, self.min_ts), max(hi, self.max_ts)
        self.min_ts, self.max_ts = lo, hi
        self.last_add_s = now_s
        return len(records)

    def due(self, triggers: Triggers, now_s: float, caught_up: bool = True) -> Trigger | None:
        """The first trigger that holds, or None (an empty buffer is never due; a partition not
        `caught_up` with its broker is never idle, only waiting for the fetcher)."""
        r = self.records
        if not len(r):
            return None
        if len(r) >= triggers.rows:
            return "rows"
        if r.nbytes >= triggers.bytes:
            return "bytes"
        if self.max_ts - self.min_ts >= triggers.span_ms:
            return "span"
        if caught_up and now_s >= self.idle_at(triggers):
            return "idle"
        return None

    def idle_at(self, triggers: Triggers) -> float:
        """When (monotonic s) the buffer turns idle if nothing more is added."""
        return self.last_add_s + triggers.idle_s

    def restore(self, records: Records) -> None:
        """Put back records taken by a flush that failed (they precede anything added since)."""
        records.extend(self.records)
        self.records = records
        if len(records):
            self.min_ts, self.max_ts = min(records.timestamps), max(records.timestamps)

    def take(self) -> Records:
        """Detach and return everything buffered."""
        records, self.records = self.records, Records()
        return records
