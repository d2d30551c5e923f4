"""Atomic flushes and recovery from the lake: every crash point leaves a contiguous prefix."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.cold import flush as flush_mod
from services.cold import layout
from services.cold.buffer import PartitionBuffer
from services.cold.decode import FILE_SCHEMAS, REJECT_SCHEMA
from services.cold.flush import ParquetOptions, recover, warm_up, write_flush
from services.cold.settings import ColdSettings
from tests.unit.services.cold.support import HOUR_MS, frames, lake_offsets, records

TOPIC = "telemetry.engine"
OPTIONS = ParquetOptions("zstd", 100_000)
BASE = 1_795_000_000_000 // HOUR_MS * HOUR_MS  # an hour boundary


def _spread(n: int, hours: int, with_reject_at: int | None = None):
    """n engine frames whose ts walk over `hours` hours (late frames interleaved), as items."""
    out = []
    for i, (vin, _, payload) in enumerate(frames("engine", n, cars=5)):
        doc = json.loads(payload)
        doc["ts"] = BASE + (i * 7919 % n) * (hours * HOUR_MS // n)
        out.append((vin, doc["ts"], json.dumps(doc).encode()))
    if with_reject_at is not None:
        vin, ts, _ = out[with_reject_at]
        out[with_reject_at] = (vin, ts, b"{broken")
    return out


def _buffer(items, first_offset=0):
    buffer = PartitionBuffer(TOPIC, 2, "engine")
    buffer.add(records(items, first_offset, kafka_ts=BASE), now_s=0.0)
    return buffer.take()


def test_one_file_per_hour_named_by_its_offsets_sorted_and_typed(tmp_path):
    items = _spread(300, hours=3, with_reject_at=5)
    result = write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items, first_offset=1000), OPTIONS)
    assert (result.rows, result.rejects, result.first, result.last) == (299, 1, 1000, 1299)
    files = layout.scan(tmp_path, "engine")
    assert len(files) == 4 == len(result.files)  # three hours + the reject
    assert not (tmp_path / layout.JOURNAL_DIR / f"{TOPIC}+2.json").exists()
    for f in files:
        table = pq.read_table(f.path)
        offsets = table.column("kafka_offset").to_pylist()
        assert (f.first, f.last) == (min(offsets), max(offsets))
        if "_rejects" in f.path.parts:
            assert table.schema.equals(REJECT_SCHEMA)
            assert table.column("value").to_pylist() == [b"{broken"]
            assert table.column("error")[0].as_py().startswith("parse_error")
            continue
        assert table.schema.remove_metadata().equals(FILE_SCHEMAS["engine"].remove_metadata())
        assert table.schema.field("engine_rpm").metadata[b"unit"] == b"rpm"  # catalog docs travel along
        keys = list(zip(table.column("vin").to_pylist(), table.column("ts").to_pylist(), strict=True))
        assert keys == sorted(keys)
        hours = {ts.replace(minute=0, second=0, microsecond=0) for ts in table.column("ts").to_pylist()}
        assert len(hours) == 1
        hour = hours.pop()
        assert f.folder.as_posix().endswith(f"engine/date={hour:%Y-%m-%d}/hour={hour:%H}")
        assert set(table.column("kafka_partition").to_pylist()) == {2}
        assert table.column("received_at")[0].as_py().year == 2026
    assert lake_offsets(tmp_path, "engine", TOPIC, 2) == list(range(1000, 1300))
    assert recover(tmp_path, TOPIC, 2, "engine") == 1300


def test_received_at_is_null_without_the_header(tmp_path):
    buffer = PartitionBuffer(TOPIC, 0, "engine")
    buffer.add(records(frames("engine", 3), received=None), now_s=0.0)
    write_flush(tmp_path, TOPIC, 0, "engine", buffer.take(), OPTIONS)
    (f,) = layout.scan(tmp_path, "engine")
    assert pq.read_table(f.path).column("received_at").null_count == 3


def test_recover_without_files_says_none(tmp_path):
    assert recover(tmp_path, TOPIC, 0, "engine") is None


class Crash(Exception):
    """The process died here."""


def _crash_after(monkeypatch, name: str, calls: int):
    """Make flush_mod.os.<name> raise Crash once `calls` calls went through."""
    real = getattr(flush_mod.os, name)
    count = {"n": 0}

    def wrapper(*args, **kwargs):
        if count["n"] >= calls:
            raise Crash(name)
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(flush_mod.os, name, wrapper)


def _resume(tmp_path, items, first_offset):
    """A restarted writer: recover, then consume again from the lake's position and flush."""
    position = recover(tmp_path, TOPIC, 2, "engine")
    start = first_offset if position is None else position
    rest = items[start - first_offset :]
    if rest:
        write_flush(tmp_path, TOPIC, 2, "engine", _buffer(rest, first_offset=start), OPTIONS)
    return position


# os.replace calls of a 4-file flush: journal (1), then the four renames.
@pytest.mark.parametrize("renames_done", [0, 1, 2, 3, 4])
def test_a_crash_at_any_rename_leaves_every_offset_exactly_once(tmp_path, monkeypatch, renames_done):
    earlier = _spread(50, hours=1)
    write_flush(tmp_path, TOPIC, 2, "engine", _buffer(earlier, first_offset=0), OPTIONS)
    items = _spread(300, hours=3, with_reject_at=7)
    with monkeypatch.context() as patch:
        _crash_after(patch, "replace", renames_done)
        with pytest.raises(Crash):
            write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items, first_offset=50), OPTIONS)
    position = _resume(tmp_path, items, first_offset=50)
    assert position == (50 if renames_done == 0 else 350)  # journal written: rolled forward
    assert lake_offsets(tmp_path, "engine", TOPIC, 2) == list(range(350))
    leftovers = [p for p in tmp_path.rglob(".*") if p.is_file()]
    assert leftovers == []


def test_a_crash_after_the_renames_before_the_journal_is_deleted(tmp_path, monkeypatch):
    items = _spread(200, hours=2)
    with monkeypatch.context() as patch:
        real_unlink = flush_mod.Path.unlink
        patch.setattr(flush_mod.Path, "unlink", lambda self, *a, **k: (_ for _ in ()).throw(Crash("unlink")))
        with pytest.raises(Crash):
            write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items), OPTIONS)
        patch.setattr(flush_mod.Path, "unlink", real_unlink)
    assert layout.journal_path(tmp_path, TOPIC, 2).exists()
    assert _resume(tmp_path, items, 0) == 200
    assert lake_offsets(tmp_path, "engine", TOPIC, 2) == list(range(200))
    assert not layout.journal_path(tmp_path, TOPIC, 2).exists()


def test_a_crash_while_writing_temp_files_leaves_nothing_visible(tmp_path, monkeypatch):
    items = _spread(200, hours=2)
    calls = {"n": 0}
    real = ParquetOptions.write

    def write_then_die(self, table: pa.Table, path):
        calls["n"] += 1
        if calls["n"] == 2:
            path.write_bytes(b"PAR1 torn")
            raise Crash("write")
        real(self, table, path)

    with monkeypatch.context() as patch:
        patch.setattr(ParquetOptions, "write", write_then_die)
        with pytest.raises(Crash):
            write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items), OPTIONS)
    assert layout.scan(tmp_path, "engine") == []  # temp files are hidden from every glob
    assert _resume(tmp_path, items, 0) is None
    assert lake_offsets(tmp_path, "engine", TOPIC, 2) == list(range(200))
    assert [p for p in tmp_path.rglob(".*") if p.is_file()] == []


def test_recovery_leaves_other_partitions_temp_files_alone(tmp_path):
    folder = layout.hour_folder(tmp_path, "engine", BASE // HOUR_MS)
    folder.mkdir(parents=True)
    mine = layout.temp_path(folder / layout.file_name(TOPIC, 2, 0, 9), layout.WRITER_TMP)
    theirs = layout.temp_path(folder / layout.file_name(TOPIC, 3, 0, 9), layout.WRITER_TMP)
    compaction = layout.temp_path(folder / layout.file_name(TOPIC, 2, 0, 99), layout.COMPACT_TMP)
    for p in (mine, theirs, compaction):
        p.write_bytes(b"x")
    assert recover(tmp_path, TOPIC, 2, "engine") is None
    assert not mine.exists() and theirs.exists() and compaction.exists()


def _identities(rows):
    return pa.table(
        {"vin": [r[0] for r in rows], "seq": [r[1] for r in rows], "ts": [r[2] for r in rows]},
        schema=pa.schema([("vin", pa.string()), ("seq", pa.int64()), ("ts", pa.int64())]),
    )


def _rows(root, kind="engine"):
    files = [p for p in (root / kind).rglob("*.parquet")]
    return pa.concat_tables([pq.read_table(p) for p in files]) if files else None


def test_redelivered_frames_go_to_the_rejects_within_a_flush_and_across_flushes(tmp_path):
    from services.cold.dedup import DUPLICATE, RecentFrames

    items = _spread(40, hours=1)
    recent = RecentFrames(1000)
    # flush 1: 30 frames, two of them sent twice (a redelivery inside one buffer)
    first = write_flush(
        tmp_path, TOPIC, 2, "engine", _buffer([*items[:30], items[3], items[7]]), OPTIONS, recent
    )
    assert (first.rows, first.duplicates) == (30, 2)
    recent.add(first.identities)  # what the writer does once the flush is in the lake
    # flush 2: the rest, plus copies of frames archived by flush 1 (a redelivery across flushes)
    second = write_flush(
        tmp_path, TOPIC, 2, "engine", _buffer([*items[30:], items[0], items[29]], 32), OPTIONS, recent
    )
    assert (second.rows, second.duplicates) == (10, 2)
    table = _rows(tmp_path)
    keys = list(zip(table.column("vin").to_pylist(), table.column("seq").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 40  # every frame once
    rejects = pa.concat_tables([pq.read_table(p) for p in (tmp_path / "_rejects").rglob("*.parquet")])
    assert rejects.column("error").to_pylist() == [DUPLICATE] * 4
    # the bookkeeping still sees every offset 0..43 exactly once (rows + rejects)
    offsets = sorted(table.column("kafka_offset").to_pylist() + rejects.column("kafka_offset").to_pylist())
    assert offsets == list(range(44))
    assert recover(tmp_path, TOPIC, 2, "engine") == 44


def test_a_late_frame_with_a_new_identity_is_kept(tmp_path):
    from services.cold.dedup import RecentFrames

    items = _spread(20, hours=1)
    recent = RecentFrames(1000)
    first = write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items[5:]), OPTIONS, recent)
    recent.add(first.identities)
    late = write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items[:5], 15), OPTIONS, recent)
    assert (late.rows, late.duplicates) == (5, 0)


def test_the_window_forgets_the_oldest_identities():
    from services.cold.dedup import RecentFrames

    recent = RecentFrames(3)
    recent.add(_identities([("v", 1, 10), ("v", 2, 20)]))
    recent.add(_identities([("v", 3, 30), ("v", 4, 40)]))
    assert ("v", 1, 10) not in recent and ("v", 2, 20) in recent and ("v", 4, 40) in recent
    assert len(recent) == 3
    recent.add(_identities([("w", i, i) for i in range(10)]))  # more than the window at once
    assert len(recent) == 3 and ("w", 7, 7) in recent
    assert ("w", 6, 6) not in recent and ("v", 4, 40) not in recent


def test_repeats_marks_copies_of_earlier_rows_and_of_the_window_not_the_first_of_each():
    from services.cold.dedup import RecentFrames

    recent = RecentFrames(100)
    recent.add(_identities([("v", 1, 10), ("v", 2, 20)]))
    keys = _identities([("v", 3, 30), ("v", 1, 10), ("w", 3, 30), ("v", 3, 30), ("v", 2, 21), ("v", 3, 30)])
    assert recent.repeats(keys).to_pylist() == [False, True, False, True, False, True]
    assert RecentFrames(100).repeats(keys).to_pylist() == [False, False, False, True, False, True]


def test_the_window_holds_its_own_copy_not_the_flush_buffers():
    from services.cold.dedup import RecentFrames

    big = _identities([(f"VIN{i:014d}", i, i) for i in range(50_000)])
    recent = RecentFrames(10)
    recent.add(big)
    assert len(recent) == 10 and recent.nbytes < 1_000  # not the 50k rows' buffers


def test_a_flush_of_nothing_but_copies_still_accounts_for_its_offsets(tmp_path):
    from services.cold.dedup import RecentFrames

    items = _spread(10, hours=1)
    recent = RecentFrames(1000)
    first = write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items), OPTIONS, recent)
    recent.add(first.identities)
    again = write_flush(tmp_path, TOPIC, 2, "engine", _buffer(items, 10), OPTIONS, recent)
    assert (again.rows, again.duplicates, again.rejects, again.last) == (0, 10, 10, 19)
    assert recover(tmp_path, TOPIC, 2, "engine") == 20  # the writer resumes after the copies


def test_warm_up_takes_every_configured_kind_through_a_flush_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written, write_to = [], ParquetOptions.write_to

    def spy(self, table, sink):
        write_to(self, table, sink)
        written.append(sink.getvalue())

    monkeypatch.setattr(ParquetOptions, "write_to", spy)
    settings = ColdSettings()
    warm_up(settings.kinds.values(), ParquetOptions(settings.compression, settings.row_group_rows))
    assert len(written) >= len(set(settings.kinds.values()))
    assert all(pq.read_metadata(pa.BufferReader(data)).num_rows == 1 for data in written)
    assert list(tmp_path.iterdir()) == []


def test_rejects_keep_their_value_and_key_bytes_as_consumed(tmp_path):
    from tests.unit.services.cold.support import Rec

    items = _spread(6, hours=1)
    recs = records(items, kafka_ts=BASE)
    recs[1] = Rec(1, b'{"vin":\r\n broken', None, BASE + 1)  # no key, no received_ms header
    recs[3] = Rec(3, None, b"VIN3", BASE + 3, (("received_ms", b"77"),))  # a tombstone
    buffer = PartitionBuffer(TOPIC, 2, "engine")
    buffer.add(recs, now_s=0.0)
    result = write_flush(tmp_path, TOPIC, 2, "engine", buffer.take(), OPTIONS)
    assert (result.rows, result.rejects) == (4, 2)
    (rejects,) = [pq.read_table(p) for p in (tmp_path / "_rejects").rglob("*.parquet")]
    assert rejects.column("kafka_offset").to_pylist() == [1, 3]
    assert rejects.column("value").to_pylist() == [b'{"vin":\r\n broken', b""]
    assert rejects.column("key").to_pylist() == [None, b"VIN3"]
    assert [t and t.timestamp() for t in rejects.column("received_at").to_pylist()] == [None, 0.077]
    assert lake_offsets(tmp_path, "engine", TOPIC, 2) == list(range(6))
