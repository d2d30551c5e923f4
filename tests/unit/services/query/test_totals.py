"""Counter ranges from footer rollups give the leaderboard a scan would give, on every filter."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from services.cold.compact import compact
from services.cold.flush import ParquetOptions
from services.query.filters import Filters
from services.query.lake import Lake, QueryError
from services.query.queries import run_query
from services.query.settings import QuerySettings
from services.query.totals import plan
from tests.unit.services.query.conftest import frames

SCAN = QuerySettings(min_km=0, rollups=False)
ROLLED = QuerySettings(min_km=0, rollups=True)

FILTERS = {
    "everything": Filters(),
    "one car": Filters(vins=("B",)),
    "two cars": Filters(vins=("A", "E")),
    "the next day": Filters.parse(since="2026-11-18"),
    "hour 10 on (files wholly inside)": Filters.parse(since="2026-11-17T10:00"),
    "before hour 10": Filters.parse(until="2026-11-17T10:00"),
    "cut inside both hours": Filters.parse(since="2026-11-17T09:59:30", until="2026-11-17T10:00:30"),
    "cut, one car": Filters.parse(since="2026-11-17T09:59:30", until="2026-11-17T10:00:30", vins=["A"]),
    "cut at the end only": Filters.parse(until="2026-11-17T10:01:00"),
    "nothing in range": Filters.parse(since="2026-11-19"),
}


@pytest.mark.parametrize("query", ["leaderboard", "by-mode"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_footers_and_scans_agree(lake, query, name):
    rolled = run_query(lake, query, FILTERS[name], ROLLED)
    scanned = run_query(lake, query, FILTERS[name], SCAN)
    assert rolled == scanned


def test_whole_range_reads_footers_only(lake):
    source = plan(lake.files["chassis"], "chassis", "odometer_km", Filters(), use_rollups=True)
    assert source.scan == []
    assert source.rolled_files == len(lake.files["chassis"]) > 0
    assert sorted(set(source.vins)) == ["A", "B", "C", "D", "E"]


def test_a_range_cutting_an_hour_scans_that_hours_files_and_skips_hours_outside(lake):
    f = Filters.parse(since="2026-11-17T10:00:30")  # inside hour 10; hour 09 is before it
    source = plan(lake.files["engine"], "engine", "fuel_used_l", f, use_rollups=True)
    hours = {p.parent.name for p in source.scan}
    assert hours == {"hour=10"}
    assert source.rolled_files == len([p for p in lake.files["engine"] if "2026-11-18" in str(p)])
    assert all("hour=09" not in str(p) for p in source.scan)


def test_without_rollups_every_file_in_range_is_scanned(lake):
    source = plan(lake.files["chassis"], "chassis", "odometer_km", Filters(), use_rollups=False)
    assert source.scan == lake.files["chassis"]
    assert source.vins == []


def test_files_without_a_rollup_are_scanned_beside_those_with_one(lake, tmp_path):
    shutil.copytree(lake.root, tmp_path / "lake")
    stripped = 0
    for path in sorted((tmp_path / "lake" / "chassis").rglob("*.parquet"))[::2]:
        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata(None), path)  # as another tool would write it
        stripped += 1
    mixed = Lake(tmp_path / "lake")
    try:
        source = plan(mixed.files["chassis"], "chassis", "odometer_km", Filters(), use_rollups=True)
        assert len(source.scan) == stripped > 0
        assert source.rolled_files == len(mixed.files["chassis"]) - stripped > 0
        for f in FILTERS.values():
            assert run_query(mixed, "leaderboard", f, ROLLED) == run_query(lake, "leaderboard", f, SCAN)
    finally:
        mixed.close()


def test_duplicate_frames_change_no_footer_answer(lake, tmp_path):
    from tests.unit.services.query.lakewriter import write_frames

    for subsystem, records in frames().items():
        write_frames(tmp_path, subsystem, records + records)
    twice = Lake(tmp_path)
    try:
        for f in FILTERS.values():
            assert run_query(twice, "leaderboard", f, ROLLED) == run_query(lake, "leaderboard", f, SCAN)
    finally:
        twice.close()


def test_a_compaction_between_listing_and_query_lists_again(tmp_path):
    from tests.unit.services.query.lakewriter import write_frames

    for subsystem, records in frames().items():
        for k, half in enumerate((records[::2], records[1::2])):  # two files per hour and partition
            write_frames(
                tmp_path, subsystem, [{**r, "kafka_offset": k * 100_000 + i} for i, r in enumerate(half)]
            )
    db = Lake(tmp_path)
    try:
        before = run_query(db, "leaderboard", Filters(), ROLLED)
        listed = list(db.files["chassis"])
        report = compact(tmp_path, ["chassis", "engine"], ParquetOptions(), now_s=2e9, grace_s=0)
        assert report.files_out > 0 and not all(p.exists() for p in listed)
        assert run_query(db, "leaderboard", Filters(), ROLLED) == before
        assert db.files["chassis"] != listed
    finally:
        db.close()


def test_a_file_that_is_not_parquet_gives_a_one_line_error_not_a_trace(lake_dir, tmp_path):
    shutil.copytree(lake_dir, tmp_path / "lake")
    db = Lake(tmp_path / "lake")  # a copy: the session's lake stays intact
    try:
        victim = db.files["chassis"][0]
        victim.write_bytes(b"not parquet at all")
        assert plan([victim], "chassis", "odometer_km", Filters(), use_rollups=True).scan == [victim]
        with pytest.raises(QueryError) as caught:
            run_query(db, "leaderboard", Filters(), ROLLED)
        assert "\n" not in str(caught.value) and victim.name in str(caught.value)
    finally:
        db.close()
