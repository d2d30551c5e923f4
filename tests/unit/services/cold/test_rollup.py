"""A lake file's footer rollup: per car, its rows, event-time range and counter min/max."""

import json
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq

from services.cold import layout
from services.cold.buffer import PartitionBuffer
from services.cold.compact import compact
from services.cold.flush import ParquetOptions, write_flush
from services.cold.rollup import KEY, Rollup, read_rollup, with_rollup
from tests.unit.services.cold.support import HOUR_MS, frames, records

TS = pa.timestamp("ms", tz="UTC")


def _table(rows, counter="odometer_km"):
    vins, ts, values = zip(*rows, strict=True)
    return pa.table({"vin": list(vins), "ts": pa.array(ts, pa.int64()).cast(TS), counter: list(values)})


def by_hand(table, counter):
    cars = defaultdict(list)
    for vin, ts, value in zip(
        table.column("vin").to_pylist(),
        table.column("ts").cast(pa.int64()).to_pylist(),
        table.column(counter).to_pylist(),
        strict=True,
    ):
        cars[vin].append((ts, value))
    out = {}
    for vin, seen in sorted(cars.items()):
        values = [v for _, v in seen if v is not None]
        times = [t for t, _ in seen]
        out[vin] = (len(seen), min(times), max(times), min(values, default=None), max(values, default=None))
    return out


def as_dict(rollup, counter):
    return {
        vin: (n, t0, t1, lo, hi)
        for vin, n, t0, t1, lo, hi in zip(
            rollup.vins,
            rollup.rows,
            rollup.ts_min,
            rollup.ts_max,
            rollup.lo[counter],
            rollup.hi[counter],
            strict=True,
        )
    }


def test_each_car_gets_its_rows_time_range_and_counter_range():
    table = _table(
        [
            ("B", 5_000, 20.5),
            ("A", 1_000, 10.0),
            ("A", 3_000, 10.4),
            ("A", 2_000, None),  # a frame without the signal counts as a row, not as a value
            ("B", 4_000, 20.0),
            ("A", 3_000, 10.4),  # redelivered: changes no min or max
            ("C", 9_000, None),  # no value at all: lo and hi are None
        ]
    )
    rollup = Rollup.of(table)
    assert as_dict(rollup, "odometer_km") == by_hand(table, "odometer_km")
    assert as_dict(rollup, "odometer_km")["A"] == (4, 1_000, 3_000, 10.0, 10.4)
    assert as_dict(rollup, "odometer_km")["C"] == (1, 9_000, 9_000, None, None)
    assert (rollup.first_ms, rollup.last_ms) == (1_000, 9_000)


def test_a_simulated_hour_of_engine_frames_matches_a_hand_computation(tmp_path):
    items = frames("engine", 300, cars=5, seed=3)
    buffer = PartitionBuffer("telemetry.engine", 0, "engine")
    buffer.add(records(items), now_s=0.0)
    result = write_flush(tmp_path, "telemetry.engine", 0, "engine", buffer.take(), ParquetOptions())
    assert result.files
    for path in result.files:
        table = pq.read_table(path)
        assert as_dict(read_rollup(path), "fuel_used_l") == by_hand(table, "fuel_used_l")
        assert len(read_rollup(path).vins) == 5


def test_no_rollup_without_a_counter_or_with_a_nan_or_infinity():
    assert Rollup.of(pa.table({"vin": ["A"], "ts": pa.array([1], pa.int64()).cast(TS), "x": [1.0]})) is None
    assert Rollup.of(_table([("A", 1, 1.0), ("A", 2, float("nan"))])) is None
    assert Rollup.of(_table([("A", 1, 1.0), ("A", 2, float("inf"))])) is None
    assert Rollup.of(_table([("A", 1, 1.0)]).slice(0, 0)) is None


def test_a_stale_rollup_is_replaced_or_dropped_never_inherited():
    stale = _table([("A", 1, 1.0)]).replace_schema_metadata({KEY: b"stale", b"other": b"kept"})
    fresh = with_rollup(stale)
    assert Rollup.from_json(fresh.schema.metadata[KEY]) == Rollup.of(stale)
    assert fresh.schema.metadata[b"other"] == b"kept"
    nan = _table([("A", 1, float("nan"))]).replace_schema_metadata({KEY: b"stale"})
    assert KEY not in (with_rollup(nan).schema.metadata or {})


def test_a_foreign_or_broken_footer_value_reads_as_no_rollup():
    good = json.loads(Rollup.of(_table([("A", 1, 1.0), ("B", 2, 2.0)])).to_json())
    assert Rollup.from_json(json.dumps(good).encode()) is not None
    assert Rollup.from_json(b"not json") is None
    assert Rollup.from_json(json.dumps({**good, "version": 99}).encode()) is None
    assert Rollup.from_json(json.dumps({**good, "rows": [1]}).encode()) is None  # lists of other lengths
    assert Rollup.from_json(json.dumps({k: v for k, v in good.items() if k != "lo"}).encode()) is None
    assert Rollup.from_json(b"[1, 2]") is None
    assert Rollup.from_json(json.dumps({**good, "rows": 5}).encode()) is None  # a number, not a list
    assert Rollup.from_json(json.dumps({**good, "lo": [1, 2]}).encode()) is None  # a list, not a mapping


def test_compaction_writes_the_merged_files_rollup(tmp_path):
    topic = "telemetry.chassis"
    base = 1_795_000_000_000 // HOUR_MS * HOUR_MS
    for first in (0, 40, 80):  # three flushes of one hour
        buffer = PartitionBuffer(topic, 0, "chassis")
        buffer.add(
            records(frames("chassis", 40, cars=3, seed=first + 1, start_ts=base), first_offset=first), 0.0
        )
        write_flush(tmp_path, topic, 0, "chassis", buffer.take(), ParquetOptions())
    before = layout.visible_files(tmp_path, "chassis")
    assert len(before) == 3
    compact(tmp_path, ["chassis"], ParquetOptions(), base / 1000 + 10 * 3600, grace_s=0)
    (merged,) = layout.visible_files(tmp_path, "chassis")
    assert (merged.first, merged.last) == (0, 119)
    table = pq.read_table(merged.path)
    assert as_dict(read_rollup(merged.path), "odometer_km") == by_hand(table, "odometer_km")
    assert sum(read_rollup(merged.path).rows) == 120
