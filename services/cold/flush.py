"""Writing one partition's buffer into the lake atomically, and recovering a partition from it.

A flush of topic partition P with records at offsets [a..b]:

1. decode the values (rejects kept apart), add the Kafka columns, split rows by UTC hour
   (frames and alerts by their `ts`, rejects by their Kafka timestamp);
2. per hour: sort by (vin, ts), write `.<final>.w.tmp` in the hour folder, fsync it;
3. with more than one file: write the journal `_cold/journal/<topic>+<P>.json` listing every
   (temp, final) pair, fsync it (this is the flush's commit point);
4. rename every temp file to its final name, fsync each folder;
5. delete the journal; the caller then commits b+1 to Kafka.

Recovery of P (`recover`), when the writer is assigned P: replay a journal if one is left
(finish its renames: every temp file in it was durable before the journal was), delete P's
other writer temp files (a flush that crashed before its commit point, never visible), then
read the next offset from the file names: max(last) + 1. Whatever the crash point, the lake
then holds a contiguous prefix of P's offsets and the writer resumes right after it: no row
twice, none lost. A single-file flush needs no journal: its one rename is atomic.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.catalog import SCHEMA_VERSION
from services.cold import layout
from services.cold.buffer import NO_RECEIVED, Records
from services.cold.decode import FILE_SCHEMAS, MS_UTC, REJECT_SCHEMA, Lines, decode_values
from services.cold.dedup import DUPLICATE, IDENTITY, RecentFrames
from services.cold.rollup import with_rollup
from services.cold.settings import ALERTS_KIND, ZSTD_LEVEL

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ParquetOptions:
    """How files are written."""

    compression: str = "zstd"
    row_group_rows: int = 250_000

    def write(self, table: pa.Table, path: Path) -> None:
        """Write `table` to `path` with its per-car rollup in the footer (rollup.py), and fsync it."""
        with path.open("wb") as sink:
            self.write_to(table, sink)
            sink.flush()
            os.fsync(sink.fileno())

    def write_to(self, table: pa.Table, sink: BinaryIO) -> None:
        """Write `table` as Parquet into an open binary file."""
        level = ZSTD_LEVEL if self.compression == "zstd" else None
        pq.write_table(
            with_rollup(table),
            sink,
            compression=self.compression,
            compression_level=level,
            row_group_size=self.row_group_rows,
        )


def warm_up(kinds: Iterable[str], options: ParquetOptions) -> None:
    """Take one record of each kind through a flush's steps in memory; nothing reaches the lake.

    The first flush would otherwise pay pyarrow's lazy set-up on the clock: importing pandas the
    first time it converts a list (~0.5 s where pandas is installed), the compute kernels, the
    codec. The writer runs this while it joins its group, time it spends waiting anyway.
    """
    nowhere = Path(os.devnull)
    value = json.dumps({"vin": "WARMUP", "ts": 0, "seq": 1, "schema_version": SCHEMA_VERSION}).encode()
    for kind in kinds:
        records = Records()
        records.append([_WarmUpRecord(value)])
        for part in build_parts(nowhere, "warm-up", 0, kind, records).parts:
            options.write_to(part.table, io.BytesIO())


@dataclasses.dataclass(frozen=True)
class _WarmUpRecord:
    value: bytes
    offset: int = 0
    key: bytes | None = None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = (("received_ms", b"0"),)


def int64_column(values: array[int]) -> pa.Array:
    """An int64 Arrow array of an `array("q")` column (one copy, no Python int per element)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values.tobytes())])


@dataclasses.dataclass(frozen=True)
class Part:
    """One file-to-be of a flush: its rows, and where they go."""

    table: pa.Table
    final: Path
    first: int
    last: int
    rejects: bool


@dataclasses.dataclass(frozen=True)
class FlushResult:
    """What a flush put in the lake."""

    files: tuple[Path, ...]
    rows: int
    rejects: int
    first: int
    last: int
    duplicates: int = 0  # redelivered frames moved to the rejects (see dedup.py)
    identities: pa.Table | None = None  # of the frames archived, for the partition's window


@dataclasses.dataclass(frozen=True)
class Built:
    """A flush's files-to-be, and which frames it archives."""

    parts: list[Part]
    duplicates: int = 0
    identities: pa.Table | None = None  # (vin, seq, ts) of the frames archived, when deduplicating


def drop_duplicates(
    table: pa.Table, kept: list[int], rejects: list[tuple[int, str]], recent: RecentFrames
) -> tuple[pa.Table, list[int], list[tuple[int, str]], int]:
    """Move frames already in `recent` (or earlier in this flush) to the rejects."""
    repeated = recent.repeats(table.select(list(IDENTITY)))
    if not pc.any(repeated).as_py():
        return table, kept, rejects, 0
    rows = pc.indices_nonzero(repeated).to_pylist()
    table = table.filter(pc.invert(repeated))
    duplicates = [(kept[row], DUPLICATE) for row in rows]
    gone = set(rows)
    kept = [k for row, k in enumerate(kept) if row not in gone]
    return table, kept, sorted([*rejects, *duplicates]), len(duplicates)


def build_parts(
    root: Path, topic: str, partition: int, kind: str, records: Records, recent: RecentFrames | None = None
) -> Built:
    """Decode and split a partition's records into per-hour tables with their final paths."""
    n = len(records)
    offsets = int64_column(records.offsets)
    received = int64_column(records.received)
    received = pc.if_else(pc.equal(received, NO_RECEIVED), pa.scalar(None, pa.int64()), received).cast(MS_UTC)
    parts_col = pa.repeat(pa.scalar(partition, pa.int32()), n)
    lines = records.lines()
    table, kept, rejects = decode_values(kind, lines)
    duplicates = 0
    identities: pa.Table | None = None
    if recent is not None and kind != ALERTS_KIND:  # alerts are idempotent by (alert_id, status)
        table, kept, rejects, duplicates = drop_duplicates(table, kept, rejects, recent)
        identities = table.select(list(IDENTITY))
    if len(kept) != n:
        index = pa.array(kept, pa.int64())
        offsets_k, received_k, parts_k = offsets.take(index), received.take(index), parts_col.take(index)
    else:
        offsets_k, received_k, parts_k = offsets, received, parts_col
    schema = FILE_SCHEMAS[kind]
    hours = pc.divide(table.column("ts"), layout.HOUR_MS) if table.num_rows else pa.array([], pa.int64())
    columns = [table.column(name) for name in table.column_names]
    columns += [parts_k, offsets_k, received_k]
    full = pa.Table.from_arrays(columns, names=[*table.column_names, *schema.names[table.num_columns :]])
    full = full.cast(schema)
    out: list[Part] = []
    for hour, rows in _split(full, hours):
        rows = rows.sort_by([("vin", "ascending"), ("ts", "ascending")])
        out.append(_part(root, topic, partition, kind, hour, rows, rejects=False))
    if rejects:
        out += _reject_parts(root, topic, partition, kind, records, lines, rejects)
    return Built(out, duplicates, identities)


def _split(table: pa.Table, hours: pa.Array | pa.ChunkedArray) -> list[tuple[int, pa.Table]]:
    if table.num_rows == 0:
        return []
    unique = pc.unique(hours).to_pylist()
    if len(unique) == 1:
        return [(int(unique[0]), table)]
    return [(int(h), table.filter(pc.equal(hours, h))) for h in sorted(unique)]


def _part(
    root: Path, topic: str, partition: int, kind: str, hour: int, rows: pa.Table, *, rejects: bool
) -> Part:
    lo, hi = pc.min_max(rows.column("kafka_offset")).values()
    first, last = lo.as_py(), hi.as_py()
    folder = layout.hour_folder(root, kind, hour, rejects=rejects)
    return Part(rows, folder / layout.file_name(topic, partition, first, last), first, last, rejects)


def _reject_parts(
    root: Path,
    topic: str,
    partition: int,
    kind: str,
    records: Records,
    values: Lines,
    rejects: list[tuple[int, str]],
) -> list[Part]:
    """The rejected records as they came (value and key bytes untouched), by hour of their Kafka time."""
    idx = [i for i, _ in rejects]
    stamps = [records.timestamps[i] if records.timestamps[i] >= 0 else None for i in idx]
    received = [records.received[i] for i in idx]
    keys = records.keys()
    table = pa.Table.from_pydict(
        {
            "kafka_partition": [partition] * len(idx),
            "kafka_offset": [records.offsets[i] for i in idx],
            "received_at": [None if r == NO_RECEIVED else r for r in received],
            "kafka_timestamp": stamps,
            "key": [keys[i] for i in idx],
            "value": [values[i] for i in idx],
            "error": [reason for _, reason in rejects],
        },
        schema=REJECT_SCHEMA,
    )
    hours = pa.array([layout.hour_of(t) if t is not None else 0 for t in stamps], pa.int64())
    return [_part(root, topic, partition, kind, h, t, rejects=True) for h, t in _split(table, hours)]


def write_flush(
    root: Path,
    topic: str,
    partition: int,
    kind: str,
    records: Records,
    options: ParquetOptions,
    recent: RecentFrames | None = None,
) -> FlushResult:
    """Put `records` (one partition's whole buffer) into the lake; see the module docstring."""
    built = build_parts(root, topic, partition, kind, records, recent)
    parts = built.parts
    moves: list[tuple[Path, Path]] = []
    for part in parts:
        part.final.parent.mkdir(parents=True, exist_ok=True)
        temp = layout.temp_path(part.final, layout.WRITER_TMP)
        options.write(part.table, temp)
        moves.append((temp, part.final))
    journal = layout.journal_path(root, topic, partition)
    if len(moves) > 1:
        _write_journal(journal, moves)
    for temp, final in moves:
        os.replace(temp, final)
    for folder in sorted({final.parent for _, final in moves}):
        layout.fsync_dir(folder)
    if len(moves) > 1:
        journal.unlink()
        layout.fsync_dir(journal.parent)
    reject_rows = sum(p.table.num_rows for p in parts if p.rejects)
    return FlushResult(
        files=tuple(final for _, final in moves),
        rows=sum(p.table.num_rows for p in parts) - reject_rows,
        rejects=reject_rows,
        first=records.offsets[0],
        last=records.offsets[-1],
        duplicates=built.duplicates,
        identities=built.identities,
    )


def _write_journal(journal: Path, moves: list[tuple[Path, Path]]) -> None:
    journal.parent.mkdir(parents=True, exist_ok=True)
    temp = journal.with_name(f".{journal.name}.tmp")
    body = json.dumps({"moves": [[str(t), str(f)] for t, f in moves]}).encode()
    with temp.open("wb") as sink:
        sink.write(body)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temp, journal)
    layout.fsync_dir(journal.parent)


def replay_journal(root: Path, topic: str, partition: int) -> int:
    """Finish a journaled flush of the partition if one was interrupted; returns files renamed."""
    journal = layout.journal_path(root, topic, partition)
    try:
        doc = json.loads(journal.read_bytes())
    except FileNotFoundError:
        return 0
    except ValueError:
        # A torn journal cannot exist (written to a temp name, fsynced, renamed); if one does,
        # its flush never reached its commit point: its temp files are dropped below.
        log.error("unreadable flush journal; ignoring it", extra={"journal": str(journal)})
        journal.unlink()
        return 0
    renamed = 0
    for temp_s, final_s in doc["moves"]:
        temp, final = Path(temp_s), Path(final_s)
        if final.exists():
            continue
        if temp.exists():
            os.replace(temp, final)
            renamed += 1
        else:
            log.error(
                "journaled file missing: the lake may lack rows (the audit shows where)",
                extra={"temp": temp_s, "final": final_s},
            )
    for folder in sorted({Path(f).parent for _, f in doc["moves"]}):
        if folder.is_dir():
            layout.fsync_dir(folder)
    journal.unlink()
    layout.fsync_dir(journal.parent)
    log.info("replayed flush journal", extra={"topic": topic, "partition": partition, "renamed": renamed})
    return renamed


def recover(root: Path, topic: str, partition: int, kind: str) -> int | None:
    """Make the partition's part of the lake consistent; the next offset to consume (None: no files)."""
    replay_journal(root, topic, partition)
    files: list[layout.LakeFile] = []
    removed = 0
    for base in layout.kind_roots(root, kind):
        for folder in layout.hour_folders(base):
            with os.scandir(folder) as entries:
                for entry in entries:
                    if layout.is_temp_of(entry.name, topic, partition, layout.WRITER_TMP):
                        os.unlink(entry.path)
                        removed += 1
                        continue
                    parsed = layout.parse_name(Path(entry.path))
                    if parsed is not None and parsed.topic == topic and parsed.partition == partition:
                        files.append(parsed)
    if removed:
        log.info(
            "removed temp files of an unfinished flush",
            extra={"topic": topic, "partition": partition, "removed": removed},
        )
    return layout.next_offset(files, topic, partition)
