"""The lake's layout: where a file goes, what its name says, and what is visible.

    <lake>/<kind>/date=YYYY-MM-DD/hour=HH/<topic>+<partition>+<first:019d>+<last:019d>.parquet
    <lake>/_rejects/<kind>/date=YYYY-MM-DD/hour=HH/<same name>.parquet
    <lake>/_cold/journal/<topic>+<partition>.json            a multi-file flush in progress

`kind` is the subsystem (`engine`, ...) for telemetry and `alerts` for `alerts.health`. The
hour is the UTC event time of the row (the frame's or the alert's `ts`; a reject's Kafka
timestamp). `first`/`last` are the smallest and largest Kafka offsets among the file's rows,
so the names alone say how far the lake goes for a topic partition:

    next offset to consume = max(last over the partition's files) + 1

What makes that true (see services/cold/flush.py): a partition is flushed as a whole, and a
flush of several files is journaled, so after any crash the lake (journal replayed) holds a
contiguous prefix of every partition's offsets.

Visibility. Compaction writes a merged file whose range covers the files it replaces, then
deletes those. Until the delete (or after a crash before it) both are on disk; a file whose
range lies inside another file's range, in the same folder and topic partition, is
*superseded*: `visible()` drops it, and `fleet lake compact` deletes it. Writer flushes never
produce such pairs: one partition's flushes cover disjoint offset ranges, and one flush puts
at most one file in a folder.

Temporary files are hidden (leading dot, no `.parquet` suffix), so no `*.parquet` glob ever
sees them: `.<final name>.w.tmp` (writer), `.<final name>.c.tmp` (compaction).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

REJECTS_DIR = "_rejects"
STATE_DIR = "_cold"
JOURNAL_DIR = f"{STATE_DIR}/journal"
WRITER_TMP = ".w.tmp"
COMPACT_TMP = ".c.tmp"

_NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<first>\d{19})\+(?P<last>\d{19})\.parquet$"
)

HOUR_MS = 3_600_000


@dataclasses.dataclass(frozen=True, order=True)
class LakeFile:
    """One Parquet file of the lake, as its path describes it."""

    path: Path
    topic: str
    partition: int
    first: int
    last: int

    @property
    def folder(self) -> Path:
        """The hour folder holding it."""
        return self.path.parent

    def covers(self, other: LakeFile) -> bool:
        """True when `other`'s offset range lies inside ours (same folder and topic partition)."""
        return (
            self.folder == other.folder
            and self.topic == other.topic
            and self.partition == other.partition
            and self.first <= other.first
            and other.last <= self.last
            and (self.first, self.last) != (other.first, other.last)
        )


def file_name(topic: str, partition: int, first: int, last: int) -> str:
    """`<topic>+<partition>+<first:019d>+<last:019d>.parquet`."""
    if first > last or first < 0:
        raise ValueError(f"bad offset range {first}..{last}")
    return f"{topic}+{partition}+{first:019d}+{last:019d}.parquet"


def parse_name(path: Path) -> LakeFile | None:
    """The LakeFile a path names, or None when the name is not a lake file name."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    return LakeFile(
        path,
        match["topic"],
        int(match["partition"]),
        int(match["first"]),
        int(match["last"]),
    )


def hour_of(ts_ms: int) -> int:
    """Hours since the epoch of a UTC epoch-ms instant (the bucket of a row)."""
    return ts_ms // HOUR_MS


def hour_folder(root: Path, kind: str, hour: int, *, rejects: bool = False) -> Path:
    """`<root>[/_rejects]/<kind>/date=YYYY-MM-DD/hour=HH` of an hour bucket."""
    start = dt.datetime.fromtimestamp(hour * 3600, tz=dt.UTC)
    base = root / REJECTS_DIR / kind if rejects else root / kind
    return base / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"


def folder_hour(folder: Path) -> int | None:
    """Hours since the epoch of an hour folder (`.../date=D/hour=H`), None if not one."""
    try:
        day = dt.datetime.strptime(folder.parent.name.removeprefix("date=") + "+0000", "%Y-%m-%d%z")
        hour = int(folder.name.removeprefix("hour="))
    except ValueError:
        return None
    if not folder.parent.name.startswith("date=") or not folder.name.startswith("hour="):
        return None
    return int(day.timestamp()) // 3600 + hour


def kind_roots(root: Path, kind: str) -> list[Path]:
    """The folders a kind's files live under: its own and its rejects'."""
    return [root / kind, root / REJECTS_DIR / kind]


def hour_folders(base: Path) -> Iterator[Path]:
    """Every `date=*/hour=*` folder under `base`, in time order."""
    if not base.is_dir():
        return
    for day in sorted(base.iterdir()):
        if day.is_dir() and day.name.startswith("date="):
            for hour in sorted(day.iterdir()):
                if hour.is_dir() and hour.name.startswith("hour="):
                    yield hour


def scan(root: Path, kind: str) -> list[LakeFile]:
    """Every lake file of a kind (rows and rejects), superseded ones included."""
    return [f for base in kind_roots(root, kind) for f in scan_folder(base)]


def scan_folder(base: Path) -> list[LakeFile]:
    """Every lake file under one kind's folder (`<lake>/engine`, `<lake>/_rejects/engine`)."""
    found: list[LakeFile] = []
    for folder in hour_folders(base):
        with os.scandir(folder) as entries:
            for entry in entries:
                parsed = parse_name(Path(entry.path))
                if parsed is not None:
                    found.append(parsed)
    return found


def superseded(files: Iterable[LakeFile]) -> set[LakeFile]:
    """Files whose range another file of the same folder and topic partition covers."""
    groups: dict[tuple[Path, str, int], list[LakeFile]] = defaultdict(list)
    for f in files:
        groups[(f.folder, f.topic, f.partition)].append(f)
    out: set[LakeFile] = set()
    for group in groups.values():
        if len(group) < 2:
            continue
        # Sorted by first, widest first: a file is covered iff an earlier one reaches its last.
        group.sort(key=lambda f: (f.first, -f.last))
        reach = -1
        for f in group:
            if f.last <= reach:
                out.add(f)
            reach = max(reach, f.last)
    return out


def visible(files: Iterable[LakeFile]) -> list[LakeFile]:
    """The files queries and the audit read: every file not superseded by a compacted one."""
    files = list(files)
    hidden = superseded(files)
    return sorted(f for f in files if f not in hidden)


def visible_files(root: Path, kind: str, *, rejects: bool = False) -> list[LakeFile]:
    """The visible files of one kind (e.g. `engine`), or of its rejects: what queries should read."""
    return visible(scan_folder(root / REJECTS_DIR / kind if rejects else root / kind))


def next_offset(files: Iterable[LakeFile], topic: str, partition: int) -> int | None:
    """max(last) + 1 over a topic partition's files; None when the lake has none of it."""
    lasts = [f.last for f in files if f.topic == topic and f.partition == partition]
    return max(lasts) + 1 if lasts else None


def journal_path(root: Path, topic: str, partition: int) -> Path:
    """Where a multi-file flush of one topic partition is journaled."""
    return root / JOURNAL_DIR / f"{topic}+{partition}.json"


def temp_path(final: Path, suffix: str) -> Path:
    """The hidden temporary name of `final` (`suffix`: WRITER_TMP or COMPACT_TMP)."""
    return final.with_name(f".{final.name}{suffix}")


def is_temp_of(name: str, topic: str, partition: int, suffix: str) -> bool:
    """True for a temporary file of `topic` partition `partition` with that suffix."""
    return name.startswith(f".{topic}+{partition}+") and name.endswith(suffix)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make a file's content durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
