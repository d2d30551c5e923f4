"""The views: the lake's columns, the files the cold path counts as visible, and no writing."""

from __future__ import annotations

import datetime as dt
import shutil

import pyarrow.parquet as pq
import pytest

from services.query.lake import VIEWS, Lake, QueryError, lake_schema
from tests.unit.services.query.lakewriter import write_frames

T = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)


def chassis_rows(vin="V1", n=3, start=0):
    return [
        {
            "vin": vin,
            "ts": T + dt.timedelta(seconds=i),
            "seq": i + 1,
            "schema_version": 1,
            "odometer_km": 10.0 + i,
        }
        for i in range(start, start + n)
    ]


def describe(db: Lake, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute(f"DESCRIBE {view}").rows]


def test_views_have_the_lake_columns_plus_the_partition_columns(lake):
    for view in VIEWS:
        expected = [f.name for f in lake_schema(view)] + ["date", "hour"]
        assert [name for name, _ in describe(lake, view)] == expected, view


def test_an_empty_view_has_the_same_columns_and_types_as_a_real_one(lake, tmp_path):
    empty = Lake(tmp_path)  # no folder at all
    (tmp_path / "engine").mkdir()  # and a folder without files
    try:
        empty.refresh()
        for view in VIEWS:
            assert describe(empty, view) == describe(lake, view), view
            assert empty.execute(f"SELECT count(*) FROM {view}").rows == [(0,)]
    finally:
        empty.close()


def test_timestamps_are_utc(lake):
    got = lake.execute("SELECT min(ts) FROM engine").rows[0][0]
    assert got == dt.datetime(2026, 11, 17, 9, 59, tzinfo=dt.UTC)
    assert lake.execute("SELECT strftime(min(ts), '%H:%M') FROM engine").rows == [("09:59",)]


def test_partition_filter_skips_other_days(lake):
    plan = "\n".join(
        str(r[1])
        for r in lake.execute(
            "EXPLAIN ANALYZE SELECT count(*) FROM engine WHERE date = DATE '2026-11-18'"
        ).rows
    )
    assert "Scanning Files: 1/" in plan


def test_a_file_superseded_by_a_compacted_one_is_read_once(tmp_path):
    (first,) = write_frames(tmp_path, "chassis", chassis_rows(n=3))  # offsets 0..2
    folder = first.parent
    # Compaction wrote the merged file (offsets 0..5) and has not deleted the old one yet.
    more = write_frames(tmp_path / "more", "chassis", chassis_rows(n=3, start=3))[0]
    merged = pq.read_table(first).to_pylist() + [
        r | {"kafka_offset": r["kafka_offset"] + 3} for r in pq.read_table(more).to_pylist()
    ]
    import pyarrow as pa

    partition = merged[0]["kafka_partition"]
    pq.write_table(
        pa.Table.from_pylist(merged, schema=lake_schema("chassis")),
        folder / f"telemetry.chassis+{partition}+{0:019d}+{5:019d}.parquet",
    )
    # A writer's temp file and a reject are never read either.
    shutil.copy(first, folder / f".telemetry.chassis+{partition}+{6:019d}+{8:019d}.parquet.w.tmp")
    rejects = tmp_path / "_rejects" / "chassis" / folder.parent.name / folder.name
    rejects.mkdir(parents=True)
    shutil.copy(first, rejects / first.name)
    db = Lake(tmp_path)
    try:
        assert db.execute("SELECT count(*), count(DISTINCT seq) FROM chassis").rows == [(6, 6)]
    finally:
        db.close()


def test_refresh_sees_files_written_after_opening(tmp_path):
    db = Lake(tmp_path)
    try:
        assert db.execute("SELECT count(*) FROM chassis").rows == [(0,)]
        write_frames(tmp_path, "chassis", chassis_rows())
        db.refresh()
        assert db.execute("SELECT count(*) FROM chassis").rows == [(3,)]
    finally:
        db.close()


def test_a_file_compacted_away_after_listing_is_listed_again(tmp_path):
    (first,) = write_frames(tmp_path, "chassis", chassis_rows())
    db = Lake(tmp_path)
    try:
        # The cold path compacts: the old file goes, a new one (same rows) comes.
        renamed = first.with_name(first.name.replace("+0000000000000000002", "+0000000000000000009"))
        first.rename(renamed)
        assert db.execute("SELECT count(*) FROM chassis").rows == [(3,)]
    finally:
        db.close()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY chassis TO 'x.csv'", "COPY statements are refused: the lake is read-only"),
        ("SELECT 1; COPY chassis TO 'x.csv'", "COPY statements are refused"),
        ("CREATE TABLE t AS SELECT 1", "CREATE statements are refused"),
        ("ATTACH 'x.db'", "ATTACH statements are refused"),
        ("INSTALL httpfs", "LOAD statements are refused"),  # DuckDB files INSTALL under LOAD
        ("SET enable_external_access = true", "SET statements are refused"),
        ("EXPORT DATABASE 'out'", "EXPORT statements are refused"),
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
        ("SELECT * FROM nowhere", "Catalog Error: Table with name nowhere does not exist!"),
        ("SELECT * FROM read_csv('/etc/hostname')", "Permission Error"),
        ("   ", "no SQL statement given"),
    ],
)
def test_only_reading_sql_runs_and_errors_are_one_line(lake, sql, message):
    with pytest.raises(QueryError) as info:
        lake.execute(sql)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_reading_statements_run(lake):
    assert lake.execute("SELECT count(*) AS n FROM chassis").records() == [{"n": 33}]
    assert lake.execute("EXPLAIN SELECT 1").columns
    assert lake.execute("PRAGMA table_info('alerts')").rows
