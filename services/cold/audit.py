"""`fleet lake audit`: prove, per topic partition, that the lake holds every offset once.

For each partition of the archived topics: the Kafka offsets in the lake (the `kafka_offset`
column of every visible file of the partition, rows and rejects) must contain each offset of
[earliest, committed) exactly once, where `earliest` is the topic's first available offset
(ListOffsets) and `committed` the cold group's committed offset. Reported per partition:

- gaps: offsets of that range missing from the lake (inclusive ranges);
- overlaps: offsets present more than once anywhere in the lake;
- ahead: rows at or after the committed offset (normal: a writer died between rename and
  commit; the lake is the truth, the next owner resumes after them);
- below: rows before `earliest` (normal: Kafka's retention removed them, the lake keeps them).

Clean means no gap and no overlap in any partition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from services.cold import layout
from services.common import probes
from services.common.errors import BrokerUnavailable, ConfigError
from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings

Range = tuple[int, int]  # inclusive


@dataclasses.dataclass
class PartitionAudit:
    """The verdict on one topic partition."""

    topic: str
    partition: int
    kind: str
    earliest: int
    committed: int | None
    rows: int = 0
    files: int = 0
    gaps: list[Range] = dataclasses.field(default_factory=list)
    overlaps: list[Range] = dataclasses.field(default_factory=list)
    ahead: int = 0
    below: int = 0
    superseded: int = 0
    pending_journal: bool = False

    @property
    def ok(self) -> bool:
        """No gap, no overlap."""
        return not self.gaps and not self.overlaps

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for --json)."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def _ranges(values: np.ndarray) -> list[Range]:
    """Sorted distinct ints -> inclusive runs."""
    if values.size == 0:
        return []
    breaks = np.nonzero(np.diff(values) != 1)[0]
    starts = np.concatenate(([values[0]], values[breaks + 1]))
    ends = np.concatenate((values[breaks], [values[-1]]))
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def check_offsets(offsets: np.ndarray, earliest: int, committed: int | None, audit: PartitionAudit) -> None:
    """Fill gaps/overlaps/ahead/below of `audit` from the lake's offsets of one partition."""
    values = np.sort(offsets.astype(np.int64, copy=False))
    audit.rows = int(values.size)
    dup_mask = values[1:] == values[:-1]
    audit.overlaps = _ranges(np.unique(values[1:][dup_mask]))
    distinct = np.unique(values)
    audit.below = int(np.count_nonzero(values < earliest))
    end = committed if committed is not None else earliest
    audit.ahead = int(np.count_nonzero(values >= end))
    if end > earliest:
        inside = distinct[(distinct >= earliest) & (distinct < end)]
        expected = end - earliest
        if inside.size != expected:
            present = np.zeros(expected, dtype=bool)
            present[inside - earliest] = True
            missing = np.nonzero(~present)[0] + earliest
            audit.gaps = _ranges(missing)


def lake_offsets(
    root: Path, kind: str
) -> tuple[dict[tuple[str, int], list[np.ndarray]], dict[tuple[str, int], int]]:
    """{(topic, partition): [kafka_offset arrays of visible files]}, and superseded file counts."""
    files = layout.scan(root, kind)
    hidden = layout.superseded(files)
    out: dict[tuple[str, int], list[np.ndarray]] = {}
    superseded: dict[tuple[str, int], int] = {}
    for f in files:
        key = (f.topic, f.partition)
        if f in hidden:
            superseded[key] = superseded.get(key, 0) + 1
            continue
        column = pq.read_table(f.path, columns=["kafka_offset"]).column("kafka_offset")
        out.setdefault(key, []).append(column.to_numpy())
    return out, superseded


def audit_lake(
    root: Path,
    kinds: Mapping[str, str],
    partitions: Mapping[str, int],
    earliest: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
) -> list[PartitionAudit]:
    """Audit every partition of `kinds`' topics against Kafka's earliest and committed offsets."""
    results: list[PartitionAudit] = []
    by_kind: dict[str, list[str]] = {}
    for topic, kind in kinds.items():
        by_kind.setdefault(kind, []).append(topic)
    for kind, topics in by_kind.items():
        offsets, superseded = lake_offsets(root, kind)
        for topic in topics:
            for p in range(partitions.get(topic, 0)):
                tp = TopicPartition(topic, p)
                audit = PartitionAudit(topic, p, kind, earliest.get(tp, 0), committed.get(tp))
                arrays = offsets.get((topic, p), [])
                audit.files = len(arrays)
                audit.superseded = superseded.get((topic, p), 0)
                audit.pending_journal = layout.journal_path(root, topic, p).exists()
                merged = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
                check_offsets(merged, audit.earliest, audit.committed, audit)
                results.append(audit)
    return results


async def kafka_positions(
    kafka: KafkaSettings, group_id: str, topics: Iterable[str]
) -> tuple[dict[str, int], dict[TopicPartition, int], dict[TopicPartition, int | None]]:
    """Partition counts, earliest offsets (ListOffsets) and the group's committed offsets."""
    topics = list(topics)
    await probes.kafka_ready(kafka)  # a clear one-line error when nothing answers
    # A member of the group that never subscribes: it reads the group's committed offsets
    # (OffsetFetch) without joining. (The admin client's OffsetFetch fails to decode on Tansu.)
    consumer = make_consumer(kafka, group_id=group_id, role="lake-audit")
    try:
        await consumer.start()
        partitions: dict[str, int] = {}
        await consumer.topics()  # refreshes the cluster metadata partitions_for_topic reads
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            if not found:
                raise ConfigError(
                    f"topic {topic} does not exist (check FLEET_COLD_TOPIC_PREFIX / ALERTS_TOPIC)"
                )
            partitions[topic] = len(found)
        tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
        consumer.assign(tps)
        earliest = await consumer.beginning_offsets(tps)
        committed: dict[TopicPartition, int | None] = {}
        for tp in tps:
            offset = await consumer.committed(tp)
            committed[tp] = offset if offset is not None and offset >= 0 else None
        return partitions, dict(earliest), committed
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {kafka.bootstrap}: {exc!r}") from None
    finally:
        await consumer.stop()
