"""Compaction merges closed hours; a crash at any step never shows a row twice or loses one."""

import json
import os

import pyarrow.parquet as pq
import pytest

from services.cold import compact as compact_mod
from services.cold import layout
from services.cold.audit import lake_offsets as audit_offsets
from services.cold.buffer import PartitionBuffer
from services.cold.compact import CompactionBusy, compact, compaction_lock
from services.cold.flush import ParquetOptions, recover, write_flush
from tests.unit.services.cold.support import HOUR_MS, frames, lake_offsets, records

TOPIC = "telemetry.engine"
OPTIONS = ParquetOptions("zstd", 100_000)
BASE = 1_795_000_000_000 // HOUR_MS * HOUR_MS
NOW_S = BASE / 1000 + 10 * 3600  # ten hours later: every hour of the test is closed


def _flush(root, n, first, partition=0, hour=0, bad=False):
    items = []
    for i, (vin, _, payload) in enumerate(frames("engine", n, cars=4, seed=first + 1)):
        doc = json.loads(payload)
        doc["ts"] = BASE + hour * HOUR_MS + i * 1000
        items.append((vin, doc["ts"], b"oops" if bad and i == 0 else json.dumps(doc).encode()))
    buffer = PartitionBuffer(TOPIC, partition, "engine")
    buffer.add(records(items, first_offset=first, kafka_ts=BASE + hour * HOUR_MS), now_s=0.0)
    write_flush(root, TOPIC, partition, "engine", buffer.take(), OPTIONS)


def _lake(root):
    """Four flushes into hour 0 of partition 0, one into hour 1, and partition 1's hour 0."""
    _flush(root, 30, 0)
    _flush(root, 30, 30, bad=True)
    _flush(root, 30, 60)
    _flush(root, 30, 90, hour=1)
    _flush(root, 20, 0, partition=1)
    _flush(root, 20, 20, partition=1)


def _count_sum(root):
    tables = [pq.read_table(f.path) for f in layout.visible_files(root, "engine")]
    return sum(t.num_rows for t in tables), sum(sum(t.column("seq").to_pylist()) for t in tables)


def test_compaction_merges_each_closed_hour_per_partition(tmp_path):
    _lake(tmp_path)
    before = _count_sum(tmp_path)
    report = compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=900)
    assert (report.files_in, report.files_out) == (5, 2)  # p0 hour 0: 3 -> 1, p1: 2 -> 1; rejects: 1 file
    names = sorted(f.path.name for f in layout.scan(tmp_path, "engine") if "_rejects" not in f.path.parts)
    assert names == [
        layout.file_name(TOPIC, 0, 0, 89),
        layout.file_name(TOPIC, 0, 90, 119),
        layout.file_name(TOPIC, 1, 0, 39),
    ]
    assert _count_sum(tmp_path) == before
    merged = pq.read_table(
        tmp_path
        / "engine"
        / layout.hour_folder(tmp_path, "engine", BASE // HOUR_MS).relative_to(tmp_path / "engine")
        / layout.file_name(TOPIC, 0, 0, 89)
    )
    keys = list(zip(merged.column("vin").to_pylist(), merged.column("ts").to_pylist(), strict=True))
    assert keys == sorted(keys)
    assert lake_offsets(tmp_path, "engine", TOPIC, 0) == list(range(120))
    assert recover(tmp_path, TOPIC, 0, "engine") == 120  # the offset bookkeeping still holds
    again = compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=900)
    assert again.files_in == 0


def test_open_hours_are_left_alone(tmp_path):
    _lake(tmp_path)
    report = compact(tmp_path, ["engine"], OPTIONS, now_s=BASE / 1000 + 3600 + 60, grace_s=900)
    assert report.files_in == 0  # hour 0 ended 60 s ago: within the grace


def test_a_partition_with_a_pending_flush_journal_is_skipped(tmp_path):
    _lake(tmp_path)
    journal = layout.journal_path(tmp_path, TOPIC, 0)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text('{"moves": []}')
    report = compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=900)
    assert report.skipped_pending == 1 and report.files_in == 2  # partition 1 only


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["write", "rename", "delete-1", "delete-2"])
def test_a_crash_at_any_step_shows_each_row_once_and_is_cleaned_up(tmp_path, monkeypatch, step):
    _flush(tmp_path, 30, 0)
    _flush(tmp_path, 30, 30)
    _flush(tmp_path, 30, 60)
    before = _count_sum(tmp_path)
    with monkeypatch.context() as patch:
        if step == "write":
            patch.setattr(
                compact_mod.ParquetOptions,
                "write",
                lambda self, t, p: (p.write_bytes(b"torn"), (_ for _ in ()).throw(Crash())),
            )
        elif step == "rename":
            patch.setattr(compact_mod.os, "replace", lambda *a: (_ for _ in ()).throw(Crash()))
        else:
            real_unlink = compact_mod.Path.unlink
            allowed = {"n": int(step[-1]) - 1}

            def unlink(self, *a, **k):
                if allowed["n"] == 0:
                    raise Crash()
                allowed["n"] -= 1
                return real_unlink(self, *a, **k)

            patch.setattr(compact_mod.Path, "unlink", unlink)
        with pytest.raises(Crash):
            compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=900)
    # what the audit and queries read right after the crash: every row once
    assert _count_sum(tmp_path) == before
    offsets, _ = audit_offsets(tmp_path, "engine")
    assert sorted(int(x) for a in offsets[(TOPIC, 0)] for x in a) == list(range(90))
    assert recover(tmp_path, TOPIC, 0, "engine") == 90
    # the next compaction finishes the job and leaves no debris
    compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=900)
    assert [f.path.name for f in layout.scan(tmp_path, "engine")] == [layout.file_name(TOPIC, 0, 0, 89)]
    assert [p for p in tmp_path.rglob(".*") if p.is_file()] == []
    assert _count_sum(tmp_path) == before


def test_one_compaction_at_a_time(tmp_path):
    with compaction_lock(tmp_path), pytest.raises(CompactionBusy):
        compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=0)


def test_dry_run_changes_nothing(tmp_path):
    _lake(tmp_path)
    listing = sorted(os.listdir(layout.hour_folder(tmp_path, "engine", BASE // HOUR_MS)))
    report = compact(tmp_path, ["engine"], OPTIONS, NOW_S, grace_s=0, dry_run=True)
    assert report.files_in == 5
    assert sorted(os.listdir(layout.hour_folder(tmp_path, "engine", BASE // HOUR_MS))) == listing
