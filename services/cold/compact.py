"""`fleet lake compact`: merge each closed hour's small files into large sorted ones, atomically.

A closed hour is one that ended at least `grace_s` ago (late frames can still land in it: a
later flush adds a new file, and the next compaction merges it too). Per hour folder and topic
partition, the visible files (in offset order) are cut into runs of at most TARGET_ROWS rows;
each run of two or more files becomes one file, sorted by (vin, ts), named by the run's offset
range `<topic>+<partition>+<min first>+<max last>.parquet`:

1. write `.<final>.c.tmp`, fsync;
2. rename it to the final name, fsync the folder;
3. delete the run's files, fsync the folder.

A crash before 2 leaves a hidden temp file (deleted by the next run); after 2 and before 3 is
done, the old files are *superseded*: their ranges lie inside the new file's, so
`layout.visible()` (the audit, queries through `visible_files`) reads only the new file, the
writer's recovery still finds the same max offset, and the next compaction deletes them. A run
never mixes partitions, and the writer's files of one folder and partition cover disjoint
offset ranges, so a range covering another always means "compacted from it".

A partition with a pending flush journal (a writer died mid-flush and has not recovered yet) is
left alone: its files may still change. One compaction at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.cold import layout
from services.cold.flush import ParquetOptions
from services.common.errors import FleetError

log = logging.getLogger(__name__)

TARGET_ROWS = 4_000_000  # rows per compacted file at most (bounds compaction's memory)


class CompactionBusy(FleetError):
    """Another `fleet lake compact` holds the lake's compaction lock."""


@dataclasses.dataclass
class CompactionReport:
    """What one compaction did (or, with dry_run, would do)."""

    folders: int = 0
    runs: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    superseded_removed: int = 0
    temps_removed: int = 0
    skipped_pending: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (for --json)."""
        return dataclasses.asdict(self)


@contextlib.contextmanager
def compaction_lock(root: Path) -> Iterator[None]:
    """Hold the lake's compaction lock, or raise CompactionBusy."""
    path = root / layout.STATE_DIR / "compact.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompactionBusy(f"another compaction holds {path}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compact(
    root: Path,
    kinds: Iterable[str],
    options: ParquetOptions,
    now_s: float,
    grace_s: float,
    *,
    dry_run: bool = False,
) -> CompactionReport:
    """Compact every closed hour of these kinds (and their rejects)."""
    report = CompactionReport()
    with compaction_lock(root):
        for kind in kinds:
            for base in layout.kind_roots(root, kind):
                rejects = base.parent.name == layout.REJECTS_DIR
                for folder in layout.hour_folders(base):
                    hour = layout.folder_hour(folder)
                    if hour is None or (hour + 1) * 3600 + grace_s > now_s:
                        continue
                    report.folders += 1
                    _compact_folder(root, folder, options, report, rejects=rejects, dry_run=dry_run)
    return report


def _compact_folder(
    root: Path,
    folder: Path,
    options: ParquetOptions,
    report: CompactionReport,
    *,
    rejects: bool,
    dry_run: bool,
) -> None:
    files: list[layout.LakeFile] = []
    for entry in os.scandir(folder):
        if entry.name.startswith(".") and entry.name.endswith(layout.COMPACT_TMP):
            report.temps_removed += 1
            if not dry_run:
                os.unlink(entry.path)  # a compaction that died before its rename (we hold the lock)
            continue
        parsed = layout.parse_name(Path(entry.path))
        if parsed is not None:
            files.append(parsed)
    hidden = layout.superseded(files)
    if hidden:
        report.superseded_removed += len(hidden)
        if not dry_run:
            for f in hidden:
                f.path.unlink()
            layout.fsync_dir(folder)
    groups: dict[tuple[str, int], list[layout.LakeFile]] = defaultdict(list)
    for f in files:
        if f not in hidden:
            groups[(f.topic, f.partition)].append(f)
    for (topic, partition), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        # Checked after listing: a flush renaming files into this folder wrote its journal first.
        if layout.journal_path(root, topic, partition).exists():
            report.skipped_pending += 1
            continue
        for run in _runs(sorted(group, key=lambda f: f.first)):
            _merge(run, options, report, rejects=rejects, dry_run=dry_run)


def _runs(files: list[layout.LakeFile]) -> Iterator[list[layout.LakeFile]]:
    """Consecutive files (offset order) of at most TARGET_ROWS rows together."""
    run: list[layout.LakeFile] = []
    rows = 0
    for f in files:
        n = pq.ParquetFile(f.path).metadata.num_rows
        if run and rows + n > TARGET_ROWS:
            yield run
            run, rows = [], 0
        run.append(f)
        rows += n
    if run:
        yield run


def _merge(
    run: list[layout.LakeFile],
    options: ParquetOptions,
    report: CompactionReport,
    *,
    rejects: bool,
    dry_run: bool,
) -> None:
    if len(run) < 2:
        return
    first, last = min(f.first for f in run), max(f.last for f in run)
    head = run[0]
    final = head.folder / layout.file_name(head.topic, head.partition, first, last)
    tables = [pq.read_table(f.path) for f in run]
    table = pa.concat_tables(tables, promote_options="default")
    expected = sum(t.num_rows for t in tables)
    if rejects:
        table = table.sort_by([("kafka_offset", "ascending")])
    else:
        table = table.sort_by([("vin", "ascending"), ("ts", "ascending")])
    report.runs += 1
    report.files_in += len(run)
    report.files_out += 1
    report.rows += table.num_rows
    if dry_run:
        return
    if table.num_rows != expected:  # cannot happen; never delete anything on a surprise
        raise FleetError(f"compaction of {final.name}: {table.num_rows} rows out of {expected} in")
    temp = layout.temp_path(final, layout.COMPACT_TMP)
    options.write(table, temp)
    os.replace(temp, final)
    layout.fsync_dir(final.parent)
    for f in run:
        if f.path != final:
            f.path.unlink()
    layout.fsync_dir(final.parent)
    log.info("compacted", extra={"file": str(final), "files_in": len(run), "rows": table.num_rows})
