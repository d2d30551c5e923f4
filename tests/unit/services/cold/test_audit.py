"""The audit finds every gap and every overlap, and nothing else."""

import shutil

import numpy as np
from aiokafka import TopicPartition

from services.cold import layout
from services.cold.audit import PartitionAudit, audit_lake, check_offsets
from services.cold.buffer import PartitionBuffer
from services.cold.flush import ParquetOptions, write_flush
from tests.unit.services.cold.support import frames, records

TOPIC = "telemetry.engine"


def _check(offsets, earliest, committed):
    audit = PartitionAudit(TOPIC, 0, "engine", earliest, committed)
    check_offsets(np.array(offsets, dtype=np.int64), earliest, committed, audit)
    return audit


def test_exactly_once_is_clean():
    audit = _check(range(100), 0, 100)
    assert audit.ok and audit.rows == 100 and audit.ahead == 0 and audit.below == 0


def test_gaps_are_reported_as_ranges():
    offsets = [o for o in range(100) if o not in {5, 6, 7, 50}]
    audit = _check(offsets, 0, 100)
    assert not audit.ok and audit.gaps == [(5, 7), (50, 50)] and audit.overlaps == []


def test_a_missing_tail_before_the_committed_offset_is_a_gap():
    assert _check(range(90), 0, 100).gaps == [(90, 99)]


def test_overlaps_anywhere_are_reported():
    audit = _check([*range(100), 10, 11, 12, 40, 120, 120], 0, 100)
    assert audit.overlaps == [(10, 12), (40, 40), (120, 120)] and audit.gaps == []


def test_rows_ahead_of_the_commit_and_below_the_earliest_are_fine():
    audit = _check(range(0, 130), 20, 100)
    assert audit.ok and audit.ahead == 30 and audit.below == 20


def test_nothing_committed_and_nothing_written_is_clean():
    assert _check([], 0, None).ok
    assert _check([], 7, 7).ok


def _write(root, first, n, partition=0):
    buffer = PartitionBuffer(TOPIC, partition, "engine")
    buffer.add(records(frames("engine", n, seed=first + 1), first_offset=first), now_s=0.0)
    return write_flush(root, TOPIC, partition, "engine", buffer.take(), ParquetOptions())


def test_audit_lake_reads_the_kafka_offset_column_per_partition(tmp_path):
    _write(tmp_path, 0, 40)
    _write(tmp_path, 40, 40)
    second = _write(tmp_path, 0, 50, partition=1)
    # partition 1: the same rows in another hour folder too (e.g. a zombie writer's flush)
    (path,) = second.files
    elsewhere = layout.hour_folder(tmp_path, "engine", 1)
    elsewhere.mkdir(parents=True)
    shutil.copy(path, elsewhere / path.name)
    kinds = {TOPIC: "engine"}
    earliest = {TopicPartition(TOPIC, p): 0 for p in range(3)}
    committed = {TopicPartition(TOPIC, 0): 90, TopicPartition(TOPIC, 1): 50, TopicPartition(TOPIC, 2): None}
    results = audit_lake(tmp_path, kinds, {TOPIC: 3}, earliest, committed)
    by_partition = {r.partition: r for r in results}
    assert by_partition[0].gaps == [(80, 89)] and by_partition[0].files == 2
    assert by_partition[1].overlaps == [(0, 49)]
    assert by_partition[2].ok and by_partition[2].rows == 0
