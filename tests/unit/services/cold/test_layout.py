"""Lake paths and names: what a file's name says, and which files are visible."""

from pathlib import Path

import pytest

from services.cold import layout


def test_file_name_round_trips_and_sorts_by_offset():
    name = layout.file_name("telemetry.engine", 3, 42, 1_000_000)
    assert name == "telemetry.engine+3+0000000000000000042+0000000000001000000.parquet"
    parsed = layout.parse_name(Path("/lake/engine/date=2026-11-17/hour=08") / name)
    assert parsed is not None
    assert (parsed.topic, parsed.partition, parsed.first, parsed.last) == (
        "telemetry.engine",
        3,
        42,
        1_000_000,
    )
    later = layout.file_name("telemetry.engine", 3, 1_000_001, 1_000_002)
    assert name < later  # zero padding: name order is offset order


@pytest.mark.parametrize(
    "name",
    [
        ".telemetry.engine+3+0000000000000000042+0000000000000000043.parquet.w.tmp",
        "telemetry.engine+3+42+43.parquet",
        "telemetry.engine+x+0000000000000000042+0000000000000000043.parquet",
        "telemetry.engine+3+0000000000000000042+0000000000000000043.parquet.c.tmp",
        "notes.txt",
    ],
)
def test_other_names_are_not_lake_files(name):
    assert layout.parse_name(Path(name)) is None


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError):
        layout.file_name("t", 0, 5, 4)


def test_hour_folder_is_utc_event_time_and_parses_back(tmp_path):
    ts = 1_795_000_000_000  # 2026-11-18T11:06:40Z
    folder = layout.hour_folder(tmp_path, "engine", layout.hour_of(ts))
    assert folder.relative_to(tmp_path).as_posix() == "engine/date=2026-11-18/hour=11"
    assert layout.folder_hour(folder) == layout.hour_of(ts)
    rejects = layout.hour_folder(tmp_path, "engine", layout.hour_of(ts), rejects=True)
    assert rejects.relative_to(tmp_path).as_posix() == "_rejects/engine/date=2026-11-18/hour=11"
    assert layout.folder_hour(tmp_path / "engine" / "date=x" / "hour=01") is None


def _f(folder: str, first: int, last: int, partition: int = 0) -> layout.LakeFile:
    return layout.LakeFile(
        Path(folder) / layout.file_name("t", partition, first, last), "t", partition, first, last
    )


def test_superseded_files_are_the_ones_a_wider_file_covers():
    compacted = _f("h1", 0, 99)
    old = [_f("h1", 0, 9), _f("h1", 10, 49), _f("h1", 50, 99)]
    elsewhere = _f("h2", 10, 20)  # another hour folder: never superseded by h1's files
    other_partition = _f("h1", 10, 20, partition=1)
    later = _f("h1", 100, 120)
    files = [compacted, *old, elsewhere, other_partition, later]
    assert layout.superseded(files) == set(old)
    assert layout.visible(files) == sorted([compacted, elsewhere, other_partition, later])


def test_writer_files_of_one_folder_never_supersede_each_other():
    files = [_f("h1", 0, 9), _f("h1", 10, 19), _f("h1", 25, 30)]
    assert layout.superseded(files) == set()


def test_next_offset_is_max_last_plus_one_per_partition():
    files = [_f("h1", 0, 9), _f("h2", 5, 14), _f("h1", 0, 100, partition=1)]
    assert layout.next_offset(files, "t", 0) == 15
    assert layout.next_offset(files, "t", 1) == 101
    assert layout.next_offset(files, "t", 2) is None


def test_temp_names_are_hidden_and_belong_to_their_partition(tmp_path):
    final = tmp_path / layout.file_name("telemetry.engine", 1, 0, 5)
    temp = layout.temp_path(final, layout.WRITER_TMP)
    assert temp.name.startswith(".") and not temp.name.endswith(".parquet")
    assert layout.is_temp_of(temp.name, "telemetry.engine", 1, layout.WRITER_TMP)
    assert not layout.is_temp_of(temp.name, "telemetry.engine", 11, layout.WRITER_TMP)
    assert not layout.is_temp_of(temp.name, "telemetry.engine", 1, layout.COMPACT_TMP)
