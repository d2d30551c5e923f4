"""A test-side writer of the lake contract (what `fleet cold` writes), built from schemas/arrow.py.

    write_frames(lake, "chassis", [{"vin": ..., "ts": 1795000000000, "seq": 1, ...}, ...])
    write_alerts(lake, [{"alert_id": ..., "status": "raised", ...}, ...])

Files: <lake>/<subsystem>/date=YYYY-MM-DD/hour=HH/telemetry.<subsystem>+<p>+<first:019d>+<last:019d>.parquet,
one per (hour of `ts`, Kafka partition), rows sorted by (vin, ts), offsets counted per partition
in arrival order, `received_at` = ts + `lag_ms` unless the record says otherwise.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from services.cold.flush import ParquetOptions
from services.query.lake import lake_schema

PARTITIONS = 6


def partition_of(vin: str) -> int:
    """A stable partition per VIN (the real one is murmur2; any stable choice serves the tests)."""
    return zlib.crc32(vin.encode()) % PARTITIONS


def _ms(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return value


def _write(lake: Path, folder: str, topic: str, rows: Iterable[Mapping[str, Any]], lag_ms: int) -> list[Path]:
    schema = lake_schema(folder)
    records = []
    offsets: dict[int, int] = defaultdict(int)
    for row in rows:
        record = {k: _ms(v) for k, v in row.items()}
        p = record.setdefault("kafka_partition", partition_of(record["vin"]))
        if "kafka_offset" not in record:
            record["kafka_offset"] = offsets[p]
            offsets[p] += 1
        record.setdefault("received_at", record["ts"] + lag_ms)
        records.append(record)
    if not records:
        return []
    table = pa.Table.from_pylist(records, schema=schema)
    hours = pc.divide(pc.cast(table["ts"], pa.int64()), 3_600_000)  # integer division: the UTC hour
    parts = table["kafka_partition"]
    written = []
    for hour_no, p in sorted(set(zip(hours.to_pylist(), parts.to_pylist(), strict=True))):
        chunk = table.filter(pc.and_(pc.equal(hours, hour_no), pc.equal(parts, p)))
        chunk = chunk.sort_by([("vin", "ascending"), ("ts", "ascending")])
        when = dt.datetime.fromtimestamp(hour_no * 3600, dt.UTC)
        offs = chunk["kafka_offset"]
        folder_path = lake / folder / f"date={when:%Y-%m-%d}" / f"hour={when:%H}"
        folder_path.mkdir(parents=True, exist_ok=True)
        path = folder_path / f"{topic}+{p}+{pc.min(offs).as_py():019d}+{pc.max(offs).as_py():019d}.parquet"
        ParquetOptions().write(chunk, path)  # as the cold writer does: its rollup in the footer
        written.append(path)
    return written


def write_frames(
    lake: Path, subsystem: str, frames: Iterable[Mapping[str, Any]], lag_ms: int = 250
) -> list[Path]:
    """Frames of one subsystem (missing signals are null) into the lake layout."""
    return _write(lake, subsystem, f"telemetry.{subsystem}", frames, lag_ms)


def write_alerts(lake: Path, alerts: Iterable[Mapping[str, Any]], lag_ms: int = 100) -> list[Path]:
    """Alert records into <lake>/alerts/."""
    rows = []
    for alert in alerts:
        row = dict(alert)
        if row.get("value") is not None:
            row["value"] = str(row["value"])
        rows.append(row)
    return _write(lake, "alerts", "alerts.health", rows, lag_ms)
