"""Each car's counter range over a time range: from file footers where a file lies wholly inside.

The leaderboard (and by-mode) need, per car, max - min of `odometer_km` and of `fuel_used_l`
over [since, until). Scanning the rows is most of their time on a big lake (25M doubles decode
in ~0.15 s on two cores). The cold writer puts a per-car min/max of both counters in every
file's footer (services/cold/rollup.py), so for each file of the view:

- its hour folder lies outside the range: skipped (the layout puts a row in its event hour);
- it has a rollup and its rows' event times all lie inside the range: its footer entries stand
  for its rows (min and max compose; duplicates change neither);
- otherwise (cut by the range, or no rollup): its rows are scanned with the range's filter.

    source = plan(lake.files["chassis"], "odometer_km", filters, use_rollups=True)
    cte, params = counter_range("dist", "distance_km", source, filters)

A car's change is then max(hi) - min(lo) over the footer entries and the scanned rows together:
the same number a scan of every file gives, which the unit tests check on every filter.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from services.cold.layout import HOUR_MS, folder_hour
from services.cold.rollup import Rollup, read_rollup
from services.query.filters import Filters
from services.query.lake import files_sql

# Footers are read in parallel: each read is a small random I/O plus a thrift decode (pyarrow
# releases the GIL), ~1 ms from the page cache and far more from a cold disk.
FOOTER_READERS = 8


@dataclasses.dataclass(frozen=True)
class CounterSource:
    """Where one counter's per-car range comes from: footer entries, and files to scan."""

    view: str
    column: str
    vins: list[str] = dataclasses.field(default_factory=list)
    lo: list[float | None] = dataclasses.field(default_factory=list)
    hi: list[float | None] = dataclasses.field(default_factory=list)
    scan: list[Path] = dataclasses.field(default_factory=list)
    rolled_files: int = 0


def _ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _may_hold(path: Path, since_ms: int | None, until_ms: int | None) -> bool:
    """False when the file's hour folder lies wholly outside [since, until)."""
    hour = folder_hour(path.parent)
    if hour is None:
        return True
    start = hour * HOUR_MS
    return not (
        (until_ms is not None and start >= until_ms) or (since_ms is not None and start + HOUR_MS <= since_ms)
    )


def plan(files: list[Path], view: str, column: str, f: Filters, *, use_rollups: bool) -> CounterSource:
    """Sort a view's files into footer entries and files to scan for one counter and range."""
    since_ms, until_ms = _ms(f.since), _ms(f.until)
    candidates = [p for p in files if _may_hold(p, since_ms, until_ms)]
    if not use_rollups:
        return CounterSource(view, column, scan=candidates)
    with ThreadPoolExecutor(FOOTER_READERS) as pool:
        rollups = list(pool.map(read_rollup, candidates))
    source = CounterSource(view, column)
    wanted = set(f.vins)
    rolled = 0
    for path, rollup in zip(candidates, rollups, strict=True):
        if rollup is None or column not in rollup.lo:
            source.scan.append(path)
        elif (since_ms is not None and rollup.last_ms < since_ms) or (
            until_ms is not None and rollup.first_ms >= until_ms
        ):
            continue  # every row outside the range
        elif (since_ms is None or rollup.first_ms >= since_ms) and (
            until_ms is None or rollup.last_ms < until_ms
        ):
            rolled += 1
            _take(source, rollup, column, wanted)
        else:
            source.scan.append(path)
    return dataclasses.replace(source, rolled_files=rolled)


def _take(source: CounterSource, rollup: Rollup, column: str, wanted: set[str]) -> None:
    for vin, lo, hi in zip(rollup.vins, rollup.lo[column], rollup.hi[column], strict=True):
        if not wanted or vin in wanted:
            source.vins.append(vin)
            source.lo.append(lo)
            source.hi.append(hi)


def counter_range(name: str, alias: str, source: CounterSource, f: Filters) -> tuple[str, dict[str, Any]]:
    """CTE `name` (vin, `alias`): max - min of the counter per car; and the parameters it uses."""
    column = source.column
    parts = [
        f"SELECT vin, min({column}) AS lo, max({column}) AS hi "
        f"FROM ({files_sql(source.view, source.scan)}) WHERE {f.where()} GROUP BY vin"
    ]
    params: dict[str, Any] = {}
    if source.vins:
        parts.append(f"SELECT unnest(${name}_vin) AS vin, unnest(${name}_lo) AS lo, unnest(${name}_hi) AS hi")
        params = {f"{name}_vin": source.vins, f"{name}_lo": source.lo, f"{name}_hi": source.hi}
    union = "\n        UNION ALL ".join(parts)
    sql = f"""{name} AS (
    SELECT vin, max(hi) - min(lo) AS {alias} FROM (
        {union}
    ) GROUP BY vin
)"""
    return sql, params
