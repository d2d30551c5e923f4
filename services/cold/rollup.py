"""Per-car summaries in each lake file's footer, so a query need not scan an hour it covers whole.

Every file the cold path writes (a flush or a compaction) of a table with a cumulative counter
carries, in its Parquet key-value metadata under `fleet.rollup`, one entry per car in the file:
its first and last event time, its row count, and each counter's min and max over its rows.
The leaderboard's distance and fuel are max - min of the counters over a range, and min/max
compose: for a file whose every row lies inside the range, the footer's entries give the same
answer as scanning its rows (duplicates and order change neither). Files cut by the range, and
files without a rollup (written before it existed, or by another tool), are scanned.

    with_rollup(table)      # the table with its rollup in the schema metadata (or without any)
    Rollup.of(table)        # None: no counter column, a null vin or ts, or a NaN or infinite counter
    read_rollup(path)       # from the footer; None when the file has none

The metadata is written with the file, so it is exactly as durable and as atomic as the rows
(temp file -> fsync -> rename): no second file to keep in step, nothing for compaction or the
audit to track. It is small: about 120 bytes per car per file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = b"fleet.rollup"
VERSION = 1
# The catalog's cumulative signals (schemas/catalog.py): they only grow while a car lives, so a
# range's change is max - min.
COUNTERS: tuple[str, ...] = ("odometer_km", "fuel_used_l")


@dataclasses.dataclass(frozen=True)
class Rollup:
    """One file's per-car summary: parallel lists, one position per car."""

    vins: list[str]
    rows: list[int]
    ts_min: list[int]  # epoch ms
    ts_max: list[int]
    lo: dict[str, list[float | None]]  # counter -> min per car (None: the car's rows hold no value)
    hi: dict[str, list[float | None]]

    @classmethod
    def of(cls, table: pa.Table) -> Rollup | None:
        """The summary of `table`'s rows, or None when it cannot stand for them."""
        counters = [c for c in COUNTERS if c in table.column_names]
        if not counters or table.num_rows == 0 or "vin" not in table.column_names:
            return None
        if table.column("vin").null_count or table.column("ts").null_count:
            return None
        for name in counters:
            column = table.column(name)
            if pa.types.is_floating(column.type) and pc.any(pc.invert(pc.is_finite(column))).as_py():
                return None  # engines disagree on NaN in min/max, and JSON has no NaN: let the query scan
        ts = table.column("ts").cast(pa.int64())
        narrow = pa.table({"vin": table.column("vin"), "ts": ts, **{c: table.column(c) for c in counters}})
        aggregations = [("ts", "count"), ("ts", "min"), ("ts", "max")]
        aggregations += [(c, f) for c in counters for f in ("min", "max")]
        grouped = narrow.group_by("vin", use_threads=False).aggregate(aggregations).sort_by("vin")
        return cls(
            vins=grouped.column("vin").to_pylist(),
            rows=grouped.column("ts_count").to_pylist(),
            ts_min=grouped.column("ts_min").to_pylist(),
            ts_max=grouped.column("ts_max").to_pylist(),
            lo={c: grouped.column(f"{c}_min").to_pylist() for c in counters},
            hi={c: grouped.column(f"{c}_max").to_pylist() for c in counters},
        )

    @property
    def first_ms(self) -> int:
        """The earliest event time in the file."""
        return min(self.ts_min)

    @property
    def last_ms(self) -> int:
        """The latest event time in the file."""
        return max(self.ts_max)

    def to_json(self) -> bytes:
        """The footer value."""
        body: dict[str, Any] = {"version": VERSION, **dataclasses.asdict(self)}
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Rollup | None:
        """Parse a footer value; None for another version or a malformed one (the file is scanned)."""
        try:
            body = json.loads(raw)
            if body.get("version") != VERSION:
                return None
            rollup = cls(**{f.name: body[f.name] for f in dataclasses.fields(cls)})
            n = len(rollup.vins)
            lists: list[list[Any]] = [rollup.rows, rollup.ts_min, rollup.ts_max, *rollup.lo.values()]
            lists += rollup.hi.values()
            if n == 0 or any(len(values) != n for values in lists) or rollup.lo.keys() != rollup.hi.keys():
                return None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return rollup


def with_rollup(table: pa.Table) -> pa.Table:
    """`table` with its rollup in the schema metadata; without the key when it has none.

    A compaction's input tables carry their own rollups: the merged table's is always recomputed,
    never inherited.
    """
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != KEY}
    rollup = Rollup.of(table)
    if rollup is not None:
        metadata[KEY] = rollup.to_json()
    return table.replace_schema_metadata(metadata or None)


def read_rollup(path: Path) -> Rollup | None:
    """The rollup in a file's footer, or None (also for a file that is not Parquet: a scan of it
    then fails with the engine's own error). A missing file raises FileNotFoundError."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except pa.ArrowInvalid:
        return None
    raw = metadata.get(KEY)
    return Rollup.from_json(raw) if raw is not None else None
