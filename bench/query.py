"""`fleet bench query`: the fuel leaderboard on DuckDB views beside pandas, at 10M and 50M lake rows.

Method:
- A synthetic lake in the contract layout (`<lake>/<sub>/date=/hour=/<topic>+<p>+<first>+<last>.parquet`,
  every column of schemas/arrow.py plus the Kafka columns, rows sorted by (vin, ts) per file),
  built with numpy and written by the cold writer's own `ParquetOptions.write` (zstd, its row
  groups, the per-car footer rollup of services/cold/rollup.py): 1,000 cars at 1 Hz, cars spread
  over 6 partitions, one file per (hour, partition) as after `fleet lake compact`. "N rows" counts
  chassis + engine rows together, half each (the two tables the leaderboard reads); the other
  three subsystems are not written (the leaderboard never opens them). Each lake is kept under
  the temp dir and reused while its parameters match.
- Ours: `fleet query leaderboard` as the CLI runs it (`Lake` views, `run_query`), whole range,
  timed from the SQL to the fetched rows, median of 5 after one warm-up. The views are built once
  (listing the files is not part of the query); reading the footers is (every run reads them
  again: no cache). The whole range lies inside every file, so the footers answer it; the same
  query with FLEET_QUERY_ROLLUPS=false (every row scanned) is measured too and reported beside
  it (`ours_every_row_scanned_s`), with its answer checked the same way.
- Peer: pandas, the obvious way: `pd.read_parquet(<lake>/chassis, columns=["vin", "odometer_km"])`,
  the same for engine, `groupby("vin").agg(["min", "max"])`, the same ratio, `rank(method="min")`
  and percentile; timed from the read to the finished frame, median of 3 after one warm-up.
- Both see files in the OS page cache (written or read just before): this measures query
  engines, not the disk. Both answers are checked equal (per car: distance, fuel, L/100 km,
  km/L, rank, percentile) and equal to the generator's own truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from bench.results import median, result, write_results
from services.cold.flush import ParquetOptions
from services.query.filters import Filters
from services.query.lake import Lake, lake_schema
from services.query.queries import run_query
from services.query.settings import QuerySettings

DATA_DIR = Path(tempfile.gettempdir()) / "fleet-bench-query"
START = dt.datetime(2026, 11, 17, tzinfo=dt.UTC)
CARS = 1000
PARTITIONS = 6
GOAL_S = 2.0
GOAL_RATIO = 10.0
WRITER = ParquetOptions()  # the cold writer's settings: compression, row groups, and the footer rollup


@dataclasses.dataclass(frozen=True)
class LakeSpec:
    """One synthetic lake: `rows` chassis + engine rows in total."""

    rows: int
    cars: int = CARS
    seed: int = 7
    files: str = "cold writer (zstd, footer rollups)"  # how the files are written; another value rewrites

    @property
    def ticks(self) -> int:
        """Frames per car per table."""
        return self.rows // 2 // self.cars

    @property
    def path(self) -> Path:
        """Where it is kept."""
        return DATA_DIR / f"lake-{self.rows // 1_000_000}M-{self.cars}cars-seed{self.seed}"


def vin_for(i: int) -> str:
    """The simulator's VIN shape."""
    return f"1FLEET{i:011d}"


def car_series(spec: LakeSpec) -> tuple[np.ndarray, np.ndarray]:
    """(odometer_km, fuel_used_l), each cars x ticks: counters that only grow, each car its own pace."""
    rng = np.random.default_rng(spec.seed)
    mean_kmh = rng.uniform(20, 90, spec.cars)[:, None]
    l_per_100km = rng.uniform(5, 15, spec.cars)[:, None]
    moving = rng.random((spec.cars, spec.ticks)) < 0.8  # standing a fifth of the time
    km = np.where(moving, mean_kmh * rng.uniform(0.5, 1.5, (spec.cars, spec.ticks)) / 3600, 0.0)
    idle_l = np.where(moving, 0.0, 1.0 / 3600)  # 1 L/h at idle
    odometer = rng.uniform(5_000, 120_000, spec.cars)[:, None] + np.cumsum(km, axis=1)
    fuel = odometer[:, :1] * 0.07 + np.cumsum(km * l_per_100km / 100 + idle_l, axis=1)
    return np.round(odometer, 4), np.round(fuel, 4)


def _filler(field: pa.Field, n: int, rng: np.random.Generator) -> pa.Array:
    """Plausible values for a column the leaderboard does not read (a repeated random block)."""
    block = 4096
    if pa.types.is_floating(field.type):
        return pa.array(np.resize(np.round(rng.uniform(0, 100, block), 2), n))
    if pa.types.is_boolean(field.type):
        return pa.array(np.resize(rng.random(block) < 0.9, n))
    if pa.types.is_integer(field.type):
        return pa.array(np.resize(rng.integers(0, 5, block), n)).cast(field.type)
    raise TypeError(f"no filler for {field}")


def write_lake(spec: LakeSpec) -> dict[str, Any]:
    """Write the lake (chassis + engine); returns what it holds."""
    tmp = spec.path.with_name(spec.path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    odometer, fuel = car_series(spec)
    rng = np.random.default_rng(spec.seed + 1)
    vins = np.array([vin_for(i) for i in range(spec.cars)], dtype=object)
    start_ms = int(START.timestamp() * 1000)
    files = 0
    for subsystem, counter, name in (("chassis", odometer, "odometer_km"), ("engine", fuel, "fuel_used_l")):
        schema = lake_schema(subsystem)
        offsets = [0] * PARTITIONS
        for hour in range((spec.ticks + 3599) // 3600):
            t0, t1 = hour * 3600, min(spec.ticks, (hour + 1) * 3600)
            n_ticks = t1 - t0
            for p in range(PARTITIONS):
                cars = np.arange(p, spec.cars, PARTITIONS)  # ascending VINs: rows sorted by (vin, ts)
                n = len(cars) * n_ticks
                ticks = np.tile(np.arange(t0, t1), len(cars))
                ts = start_ms + ticks * 1000
                columns: dict[str, pa.Array] = {
                    "vin": pa.array(np.repeat(vins[cars], n_ticks), pa.string()),
                    "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
                    "seq": pa.array(ticks + 1, pa.int64()),
                    "schema_version": pa.array(np.ones(n, np.int16)),
                    name: pa.array(counter[cars, t0:t1].ravel()),
                    "kafka_partition": pa.array(np.full(n, p, np.int32)),
                    "kafka_offset": pa.array(offsets[p] + np.arange(n, dtype=np.int64)),
                    "received_at": pa.array(ts + 200, pa.timestamp("ms", tz="UTC")),
                }
                arrays = [columns[f.name] if f.name in columns else _filler(f, n, rng) for f in schema]
                table = pa.Table.from_arrays(arrays, schema=schema)
                when = START + dt.timedelta(hours=hour)
                folder = tmp / subsystem / f"date={when:%Y-%m-%d}" / f"hour={when:%H}"
                folder.mkdir(parents=True, exist_ok=True)
                first, last = offsets[p], offsets[p] + n - 1
                WRITER.write(table, folder / f"telemetry.{subsystem}+{p}+{first:019d}+{last:019d}.parquet")
                offsets[p] += n
                files += 1
    distance = odometer[:, -1] - odometer[:, 0]
    litres = fuel[:, -1] - fuel[:, 0]
    truth = {vin_for(i): [float(distance[i]), float(litres[i])] for i in range(spec.cars)}
    info = {"spec": dataclasses.asdict(spec), "files": files, "truth": truth}
    (tmp / "bench.json").write_text(json.dumps(info))
    shutil.rmtree(spec.path, ignore_errors=True)
    tmp.rename(spec.path)
    return info


def ensure_lake(spec: LakeSpec) -> dict[str, Any]:
    """The lake for `spec`, written only when it is not there yet (or was written differently)."""
    marker = spec.path / "bench.json"
    if marker.exists():
        info: dict[str, Any] = json.loads(marker.read_text())
        if info.get("spec") == dataclasses.asdict(spec):
            return info
    t0 = time.perf_counter()
    info = write_lake(spec)
    print(f"bench query: wrote {spec.path} ({spec.rows:,} rows) in {time.perf_counter() - t0:.1f} s")
    return info


def lake_bytes(path: Path) -> int:
    """Bytes of Parquet under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def ours(spec: LakeSpec, repeats: int, *, rollups: bool = True) -> tuple[float, dict[str, dict[str, float]]]:
    """Median seconds of the leaderboard on DuckDB, and its answer per VIN."""
    lake = Lake(spec.path)
    settings = QuerySettings(min_km=0.0, rollups=rollups)
    try:
        run_query(lake, "leaderboard", Filters(), settings)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            answer = run_query(lake, "leaderboard", Filters(), settings)
            times.append(time.perf_counter() - t0)
    finally:
        lake.close()
    return median(times), {r["vin"]: r for r in answer.records()}


def pandas_leaderboard(root: Path) -> Any:
    """The same leaderboard with pandas: read the columns, group by car, rank."""
    import pandas as pd  # type: ignore[import-untyped]  # the peer: dev extra, no stubs

    chassis = pd.read_parquet(root / "chassis", columns=["vin", "odometer_km"])
    engine = pd.read_parquet(root / "engine", columns=["vin", "fuel_used_l"])
    odo = chassis.groupby("vin")["odometer_km"].agg(["min", "max"])
    used = engine.groupby("vin")["fuel_used_l"].agg(["min", "max"])
    cars = pd.DataFrame({"distance_km": odo["max"] - odo["min"]}).join(
        pd.DataFrame({"fuel_l": used["max"] - used["min"]}), how="inner"
    )
    cars = cars[cars["distance_km"] > 0]
    cars["l_per_100km"] = (cars["fuel_l"] / cars["distance_km"] * 100).round(3)  # ranked as shown
    cars["km_per_l"] = cars["distance_km"] / cars["fuel_l"]
    cars["rank"] = cars["l_per_100km"].rank(method="min").astype(int)
    n = len(cars)
    cars["percentile"] = 100 * (1 - (cars["rank"] - 1) / max(1, n - 1))
    return cars.sort_values(["rank"])


def pandas_version() -> str:
    """The peer's version (pandas 3 reads strings into Arrow-backed columns: much faster than 2)."""
    import pandas as pd

    return str(pd.__version__)


def peer(spec: LakeSpec, repeats: int) -> tuple[float, Any]:
    """Median seconds of the pandas leaderboard, and its frame."""
    pandas_leaderboard(spec.path)  # warm-up (imports, page cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = pandas_leaderboard(spec.path)
        times.append(time.perf_counter() - t0)
    return median(times), frame


def check_same(ours_answer: dict[str, dict[str, float]], frame: Any, truth: dict[str, list[float]]) -> None:
    """Both engines give the same leaderboard, and it matches what the generator wrote."""
    if set(ours_answer) != set(frame.index) or set(ours_answer) != set(truth):
        raise AssertionError("DuckDB and pandas rank different cars")
    for vin, row in frame.iterrows():
        mine = ours_answer[vin]
        for column, tolerance in (
            ("distance_km", 6e-4),
            ("fuel_l", 6e-4),
            ("l_per_100km", 6e-4),
            ("km_per_l", 6e-4),
            ("percentile", 0.06),
        ):
            if abs(mine[column] - row[column]) > tolerance:
                raise AssertionError(f"{vin} {column}: duckdb {mine[column]} pandas {row[column]}")
        if mine["rank"] != row["rank"]:
            raise AssertionError(f"{vin} rank: duckdb {mine['rank']} pandas {row['rank']}")
        distance, litres = truth[vin]
        if abs(mine["distance_km"] - distance) > 6e-4 or abs(mine["fuel_l"] - litres) > 6e-4:
            raise AssertionError(f"{vin}: leaderboard {mine} != generator ({distance}, {litres})")


def run(quick: bool) -> list[dict[str, Any]]:
    """Both sizes, both engines."""
    sizes = (1_000_000, 2_000_000) if quick else (10_000_000, 50_000_000)
    out = []
    for rows in sizes:
        spec = LakeSpec(rows)
        info = ensure_lake(spec)
        ours_s, answer = ours(spec, repeats=5)
        scan_s, scanned = ours(spec, repeats=5, rollups=False)
        peer_s, frame = peer(spec, repeats=3)
        check_same(answer, frame, info["truth"])
        check_same(scanned, frame, info["truth"])
        label = f"{rows // 1_000_000}M"
        print(
            f"bench query: {label} rows: duckdb {ours_s:.3f} s (every row scanned: {scan_s:.3f} s), "
            f"pandas {peer_s:.3f} s"
        )
        out.append(
            result(
                "query",
                f"fuel leaderboard over {label} lake rows (chassis + engine, half each)",
                "s",
                ours_s,
                peer=peer_s,
                peer_name="pandas read_parquet + groupby",
                lower_is_better=True,
                params={
                    "rows": rows,
                    "cars": spec.cars,
                    "files": info["files"],
                    "lake_mb": round(lake_bytes(spec.path) / 1e6),
                    "same_answer": True,
                    "ours_every_row_scanned_s": round(scan_s, 4),
                    "ratio_every_row_scanned": round(peer_s / scan_s, 3),
                    "duckdb": duckdb.__version__,
                    "pandas": pandas_version(),
                    "cores": os.cpu_count(),
                    "goal": f"<= {GOAL_S} s at 50M rows, >= {GOAL_RATIO}x pandas",
                },
            )
        )
    return out


def main(quick: bool = False) -> Path:
    """Run and write bench/results/query.json."""
    return write_results("query", run(quick))


if __name__ == "__main__":
    print(json.dumps(json.loads(main(quick=True).read_text()), indent=2))
