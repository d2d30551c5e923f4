"""The whole pipeline on the session stack, a seeded simulator under load, and the end-of-case
checks of the fault-injection suite (tests/integration/test_faults.py).

    pipeline = Pipeline(stack, fleet_env, names, tmp_path, lake)
    await pipeline.create_topics(admin)
    await pipeline.start()                 # bridge + hot + cold, each ready
    sim = pipeline.start_simulator(LOAD)   # `fleet simulate` as a child process, QoS1
    ...                                    # the fault
    row = await finish(pipeline, sim, LOAD, recovery, row)   # drain, then every check

Each pipeline has its own topic prefix, consumer groups (hot, cold), MQTT client id and lake, so
cases never see each other's data. Services run as `fleet <verb>` child processes with fixed
metrics ports; their logs are in tmp_path/logs/<service>-<start>.log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import json
import os
import resource
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from schemas.catalog import SUBSYSTEMS
from services.cold.audit import kafka_positions
from services.common.metrics import parse_text, scrape
from services.common.mqtt import forget_session
from services.common.probes import free_ports
from services.stack.launcher import Stack
from simulators.simulation import SimulatorSettings
from tests.helpers import FLEET_BIN
from tests.integration.bridge_support import BridgeTopics, read_all
from tests.integration.cold_support import ColdTopics, audit, wait_committed

PARTITIONS = 6
Key = tuple[str, str, int]  # (vin, subsystem, seq)


# --- the load ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Load:
    """A seeded `fleet simulate` run: QoS1, faults drawn at `fault_rate` per car and hour."""

    cars: int = 30
    seconds: int = 125  # vehicle time; wall time = seconds / speedup
    speedup: float = 5.0
    seed: int = 7
    fault_rate: float = 30.0

    @property
    def wall_s(self) -> float:
        return self.seconds / self.speedup

    def settings(self, out_dir: Path) -> SimulatorSettings:
        return SimulatorSettings(
            cars=self.cars,
            duration=float(self.seconds),
            speedup=self.speedup,
            seed=self.seed,
            qos=1,
            fault_rate=self.fault_rate,
            out_dir=out_dir,
        )

    def argv(self, host: str, port: int, out_dir: Path) -> list[str]:
        return [
            FLEET_BIN, "simulate", "--host", host, "--port", str(port),
            "--cars", str(self.cars), "--duration", str(self.seconds), "--speedup", str(self.speedup),
            "--seed", str(self.seed), "--fault-rate", str(self.fault_rate), "--qos", "1",
            "--out-dir", str(out_dir),
        ]  # fmt: skip

    def expected(self) -> frozenset[Key]:
        """Every (vin, subsystem, seq) the run publishes: the same seeded model, stepped here."""
        return model(self).keys


@dataclasses.dataclass(frozen=True)
class Model:
    """What a seeded run publishes, computed without MQTT."""

    keys: frozenset[Key]
    frames_through: tuple[int, ...]  # [t]: frames published in vehicle seconds 1..t
    silences: tuple[tuple[str, int], ...]  # (vin, vehicle second) a telematics unit fell silent


@functools.cache
def model(load: Load) -> Model:
    # What `Simulation.wait` does, without the clock and the sink: the model is pure and seeded,
    # so the frames (including the gaps of cars whose telematics unit fell silent) are the same.
    from simulators.fleet import DEFAULT_START_TS, Fleet

    settings = load.settings(Path("unused"))
    fleet = Fleet(settings.fleet_config())
    keys: set[Key] = set()
    through = [0]
    for _ in range(round(settings.duration * settings.rate)):
        frames = fleet.step()
        for vin, subsystem, frame in frames:
            keys.add((vin, subsystem, int(frame["seq"])))  # type: ignore[call-overload]
        through.append(through[-1] + len(frames))
    fleet.finish()
    silences = tuple(
        (label["vin"], (label["start_ts"] - DEFAULT_START_TS) // 1000)
        for label in fleet.labels()
        if label["fault"] == "telematics_silent"
    )
    return Model(frozenset(keys), tuple(through), silences)


# --- one service --------------------------------------------------------------------------------
class Service:
    """`fleet <verb>` as a child process with a fixed metrics port and one log file per start."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        port_var: str,
        counter: str,
        preexec: Callable[[], None] | None = None,
    ):
        self.name = name
        self.metrics_port = free_ports(1)[0]
        self.env = {**env, port_var: str(self.metrics_port)}
        self.log_dir = log_dir
        self.counter = counter  # the metric that says "work is being done"
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path(self.starts).open("wb") as log:
            self.proc = subprocess.Popen(
                [FLEET_BIN, self.name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,  # noqa: PLW1509 (only the rlimit fallback sets one)
            )

    def log_path(self, start: int) -> Path:
        return self.log_dir / f"{self.name}-{start}.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9, and reap it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def metrics(self, within_s: float = 2.0) -> dict[str, float]:
        return parse_text(await scrape("127.0.0.1", self.metrics_port, within_s=within_s))

    async def count(self) -> float | None:
        """The work counter, None while the endpoint does not answer."""
        try:
            return (await self.metrics()).get(self.counter, 0.0)
        except OSError:
            return None

    def log_tail(self, lines: int = 25) -> str:
        text = "".join(self.log_path(i).read_text(errors="replace") for i in range(1, self.starts + 1))
        return "\n".join(text.splitlines()[-lines:])


# --- the pipeline -------------------------------------------------------------------------------
class Pipeline:
    """bridge + hot + cold wired to private topics, groups and a private lake."""

    def __init__(
        self,
        stack: Stack,
        fleet_env: dict[str, str],
        names: Callable[[str], str],
        tmp_path: Path,
        lake: Path,
        cold_preexec: Callable[[], None] | None = None,
    ):
        self.stack = stack
        self.tmp_path = tmp_path
        self.lake = lake
        prefix = names("p") + "."
        self.bridge_topics = BridgeTopics(prefix)
        self.cold_topics = ColdTopics(prefix)  # telemetry + <prefix>alerts
        self.alerts_topic = self.cold_topics.alerts
        self.hot_group = names("hot")
        self.cold_group = names("cold")
        self.client_id = names("bridge")
        logs = tmp_path / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        base = {**fleet_env, "FLEET_LOG_LEVEL": "INFO"}
        self.bridge = Service(
            "bridge",
            {
                **base,
                **self.bridge_topics.env(),
                "FLEET_BRIDGE_CLIENT_ID": self.client_id,
                "FLEET_BRIDGE_RETRY_MAX_S": "1",
            },
            logs,
            "FLEET_BRIDGE_METRICS_PORT",
            "fleet_bridge_produced_total",
        )
        self.hot = Service(
            "hot",
            {
                **base,
                "FLEET_HOT_APP_ID": self.hot_group,
                "FLEET_HOT_TOPIC_PREFIX": prefix,
                "FLEET_HOT_ALERTS_TOPIC": self.alerts_topic,
                "FLEET_HOT_DATADIR": str(tmp_path / "hot"),
            },
            logs,
            "FLEET_HOT_METRICS_PORT",
            "fleet_hot_frames_total",
        )
        self.cold = Service(
            "cold",
            {
                **base,
                **self.cold_topics.env(self.cold_group, lake),
                # small, frequent flushes: files land while the load runs, so a fault hits a
                # writer mid-flush (the defaults flush a partition at 250,000 rows or 5 s idle)
                "FLEET_COLD_FLUSH_ROWS": "200",
                "FLEET_COLD_FLUSH_SPAN_S": "2",
                "FLEET_COLD_IDLE_S": "1",
            },
            logs,
            "FLEET_COLD_METRICS_PORT",
            "fleet_cold_consumed_total",
            preexec=cold_preexec,
        )
        self.services = {"bridge": self.bridge, "hot": self.hot, "cold": self.cold}
        self.sim_log = tmp_path / "sim.log"

    @property
    def kafka(self):  # type: ignore[no-untyped-def]
        return self.stack.kafka

    async def create_topics(self, admin) -> None:  # type: ignore[no-untyped-def]
        topics = [*self.bridge_topics.telemetry, self.bridge_topics.deadletter, self.alerts_topic]
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])

    async def start(self, within_s: float = 60) -> None:
        """Start the three services together; return when each one works."""
        for service in self.services.values():
            service.start()
        await asyncio.gather(*(self.wait_ready(name, within_s) for name in self.services))

    async def wait_ready(self, name: str, within_s: float = 60) -> None:
        """bridge: MQTT session up; hot: Faust worker ready; cold: owns every partition."""
        service = self.services[name]
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            assert service.alive, f"{name} exited: {service.log_tail()}"
            with contextlib.suppress(OSError):
                m = await service.metrics()
                if name == "bridge" and m.get("fleet_bridge_mqtt_connected") == 1:
                    return
                if name == "cold" and m.get("fleet_cold_assigned_partitions") == PARTITIONS * 6:
                    return
                if name == "hot" and "Worker]: Ready" in service.log_path(service.starts).read_text(
                    errors="replace"
                ):
                    return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{name} not ready in {within_s}s: {service.log_tail()}")

    async def counters(self) -> dict[str, float | None]:
        names = list(self.services)
        values = await asyncio.gather(*(self.services[n].count() for n in names))
        return dict(zip(names, values, strict=True))

    def start_simulator(self, load: Load) -> subprocess.Popen[bytes]:
        s = self.stack.settings
        with self.sim_log.open("wb") as log:
            return subprocess.Popen(
                load.argv(s.host, s.mqtt_port, self.tmp_path / "sim"), stdout=log, stderr=subprocess.STDOUT
            )

    async def stop(self) -> None:
        """SIGTERM to all, wait (SIGKILL after 20 s), forget the bridge's MQTT session."""
        for service in self.services.values():
            if service.alive:
                assert service.proc is not None
                service.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while any(s.alive for s in self.services.values()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for service in self.services.values():
            if service.alive:
                assert service.proc is not None
                service.proc.kill()
                service.proc.wait(5)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(forget_session, self.stack.mqtt, self.client_id)


# --- the lake's disk ------------------------------------------------------------------------------
class LakeDisk:
    """The lake on a filesystem a test can fill and free.

    `tmpfs` (needs CAP_SYS_ADMIN, as root here and in CI): the lake is a small tmpfs mount,
    filled with a ballast file until a write fails with ENOSPC, freed by deleting it.
    `rlimit` (where mount is refused): the cold writer runs with SIGXFSZ ignored, and "full"
    means its RLIMIT_FSIZE soft limit is lowered to 1 KiB with prlimit(2) (every Parquet file
    it writes then fails with EFBIG), "freed" means the limit is raised back. Its log file is
    subject to the same limit, so its log lines written while "full" are lost.
    FLEET_FAULTS_DISK=rlimit forces the fallback (to exercise it).
    """

    def __init__(self, lake: Path, size_mib: int = 64):
        self.lake = lake
        self.size_mib = size_mib
        self.mode = ""
        self.ballast = lake / ".ballast"
        self.ballast_bytes = 0
        self._limits: tuple[int, int] | None = None

    def setup(self) -> str:
        self.lake.mkdir(parents=True, exist_ok=True)
        if os.environ.get("FLEET_FAULTS_DISK", "tmpfs") != "rlimit":
            result = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m,mode=0755", "tmpfs", str(self.lake)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                self.mode = "tmpfs"
                return self.mode
        self.mode = "rlimit"
        return self.mode

    def preexec(self) -> Callable[[], None] | None:
        """For the cold writer's Popen: ignore SIGXFSZ (kept across exec) in rlimit mode."""
        if self.mode != "rlimit":
            return None
        return _ignore_sigxfsz

    def fill(self, pid: int) -> None:
        if self.mode == "tmpfs":
            chunk = b"\0" * (1 << 20)
            with self.ballast.open("wb") as f:
                while True:
                    try:
                        f.write(chunk)
                        f.flush()
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
                    self.ballast_bytes += len(chunk)
            # the close may fail too, on the last buffered bytes: the file is there either way
        else:
            self._limits = resource.prlimit(pid, resource.RLIMIT_FSIZE)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (1024, self._limits[1]))

    def free(self, pid: int) -> None:
        if self.mode == "tmpfs":
            self.ballast.unlink()
        elif self._limits is not None:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, self._limits)

    def teardown(self) -> None:
        if self.mode == "tmpfs":
            if subprocess.run(["umount", str(self.lake)], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", str(self.lake)], capture_output=True, check=False)


def _ignore_sigxfsz() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# --- recovery -------------------------------------------------------------------------------------
class Recovery:
    """After a fault: when each service's work counter moved past where it stood at the fault's end."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.since: float | None = None
        self.baseline: dict[str, float] = {}
        self.moved_s: dict[str, float] = {}

    async def fault_over(self, restarted: frozenset[str] = frozenset()) -> None:
        """Mark the fault's end; a restarted service's baseline is 0 (a new process)."""
        self.since = time.monotonic()
        values = await self.pipeline.counters()
        self.baseline = {n: 0.0 if n in restarted or v is None else v for n, v in values.items()}

    async def poll(self) -> None:
        if self.since is None:
            return
        now = time.monotonic()
        for name, value in (await self.pipeline.counters()).items():
            if name not in self.moved_s and value is not None and value > self.baseline[name]:
                self.moved_s[name] = now - self.since

    @property
    def seconds(self) -> float | None:
        """Until the last service moved again (None: one never did)."""
        if set(self.moved_s) != set(self.pipeline.services):
            return None
        return max(self.moved_s.values())


# --- the checks -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One line of the summary table (and what failed)."""

    case: str
    published: int = 0
    in_lake: int = 0  # distinct (vin, subsystem, seq)
    missing: int = -1
    dup_rows: int = -1  # lake rows beyond the first per (vin, subsystem, seq)
    kafka_dups: int = -1  # the same, counted in Kafka (bridge redelivery): where lake dups come from
    same_offset: int = -1  # lake rows beyond the first per Kafka (topic, partition, offset)
    audit: str = "-"
    episodes: int = -1  # distinct alert_id with a `raised` record
    raised_repeats: int = -1  # `raised` records beyond the first per alert_id
    dup_episodes: int = -1  # a second alert_id for an episode still open (overlapping)
    missed_episodes: int = -1  # simulator faults (labels) decidable within the run, never raised
    recovered: str = "-"
    seconds: float = 0.0
    note: str = ""  # what the fault did, as measured
    failures: list[str] = dataclasses.field(default_factory=list)

    HEADER = (
        "case", "published", "in lake", "missing", "dup rows (kafka)", "same offset", "audit",
        "alert episodes", "raised repeats", "dup episodes", "missed episodes", "recovered", "wall s",
    )  # fmt: skip

    def cells(self) -> tuple[str, ...]:
        def n(v: int) -> str:
            return "-" if v < 0 else f"{v:,}"

        return (
            self.case, n(self.published), n(self.in_lake), n(self.missing),
            f"{n(self.dup_rows)} ({n(self.kafka_dups)})", n(self.same_offset), self.audit,
            n(self.episodes), n(self.raised_repeats), n(self.dup_episodes), n(self.missed_episodes),
            self.recovered,
            f"{self.seconds:.0f}",
        )  # fmt: skip


def _align(cells: tuple[str, ...], widths: list[int]) -> list[str]:
    """The case name left-aligned, every number right-aligned."""
    return [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]


def table(rows: list[Row]) -> str:
    """The summary, one line per case, then what failed."""
    cells = [Row.HEADER, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(Row.HEADER))]
    lines = ["  ".join(_align(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.case}: {r.note}" for r in rows if r.note]
    failed = [f"  {r.case}: {f}" for r in rows for f in r.failures]
    return "\n".join(
        lines + (["faults:", *notes] if notes else []) + (["failed checks:", *failed] if failed else [])
    )


def lake_keys(lake: Path) -> tuple[Counter[Key], int]:
    """Rows per (vin, subsystem, seq) in the lake, and rows sharing a Kafka offset (DuckDB)."""
    import duckdb

    keys: Counter[Key] = Counter()
    same_offset = 0
    con = duckdb.connect()
    try:
        for sub in SUBSYSTEMS:
            if not any((lake / sub).glob("date=*/hour=*/*.parquet")):
                continue
            src = f"read_parquet('{lake / sub}/date=*/hour=*/*.parquet')"
            for vin, seq, n in con.execute(f"select vin, seq, count(*) from {src} group by all").fetchall():
                keys[(vin, sub, int(seq))] += int(n)
            (extra,) = con.execute(
                f"select coalesce(sum(n - 1), 0) from (select count(*) n from {src} "
                "group by kafka_partition, kafka_offset having count(*) > 1)"
            ).fetchone()
            same_offset += int(extra)
    finally:
        con.close()
    return keys, same_offset


def alert_stats(alerts: list[dict[str, Any]]) -> tuple[int, int, list[tuple[dict, dict]]]:
    """(episodes, raised repeats, overlapping pairs).

    An episode is an alert_id with a `raised` record. Two distinct alert_ids of one car, rule and
    signal whose spans overlap ([started_at, cleared ts or open]) are one episode raised twice
    (its state was lost and the condition was found again with a new started_at).
    """
    raised = Counter(a["alert_id"] for a in alerts if a["status"] == "raised")
    first: dict[str, dict] = {}
    cleared: dict[str, int] = {}
    for a in alerts:
        if a["status"] == "raised":
            first.setdefault(a["alert_id"], a)
        elif a["status"] == "cleared":
            cleared[a["alert_id"]] = min(a["ts"], cleared.get(a["alert_id"], a["ts"]))
    by_stream: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for a in first.values():
        by_stream[(a["vin"], a["rule"], a.get("signal", ""))].append(a)
    overlaps = []
    for episodes in by_stream.values():
        episodes.sort(key=lambda a: a["started_at"])
        for i, a in enumerate(episodes):
            end = cleared.get(a["alert_id"], float("inf"))
            for b in episodes[i + 1 :]:
                if b["started_at"] < end:
                    overlaps.append((a, b))
    return len(raised), sum(n - 1 for n in raised.values()), overlaps


def decision_delay_ms(rule: str) -> float:
    """Vehicle time a rule needs by design: its on-delay, its measuring window, or M frames at 1 Hz."""
    from services.hot.config import load_rules

    section = getattr(load_rules(), rule, None)
    seconds = float(getattr(section, "on_delay_s", 0.0) or 0.0) + float(
        getattr(section, "window_s", 0.0) or 0.0
    )
    return (seconds + float(getattr(section, "m", 0) or 0)) * 1000


def missed_labels(labels: list[dict[str, Any]], alerts: list[dict[str, Any]], run_end_ts: int) -> list[dict]:
    """Faults of the simulator's ground truth that no `raised` episode of their car and rule explains.

    Only faults that are decidable within the run count: their signature showed (`onset_ts`) at
    least the rule's decision delay + 25 s of vehicle time (5 s of wall time at 5x: staleness
    is wall time, 3 s) before the run ended.
    """
    raised = [a for a in alerts if a["status"] == "raised"]
    missed = []
    for label in labels:
        onset = label["onset_ts"]
        if onset is None or onset + decision_delay_ms(label["rule"]) + 25_000 > run_end_ts:
            continue
        end = label["end_ts"] or float("inf")
        if not any(
            a["vin"] == label["vin"]
            and a["rule"] == label["rule"]
            and a["started_at"] <= end
            and a["ts"] >= label["start_ts"]
            for a in raised
        ):
            missed.append(label)
    return missed


async def wait_group_caught_up(
    pipeline: Pipeline, group: str, ends: dict[TopicPartition, int], within_s: float
) -> bool:
    """Until `group` committed every partition's end offset (Faust and aiokafka commit last + 1)."""
    deadline = time.monotonic() + within_s
    topics = sorted({tp.topic for tp in ends})
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a rebalancing group answers with errors for a while
            _, _, committed = await kafka_positions(pipeline.kafka, group, topics)
            if all((committed.get(tp) or 0) >= end for tp, end in ends.items()):
                return True
        await asyncio.sleep(0.5)
    return False


async def finish(
    pipeline: Pipeline, sim: subprocess.Popen[bytes], load: Load, recovery: Recovery, row: Row
) -> Row:
    """Let the simulator end and the pipeline drain, then run every check into `row`."""
    f = row.failures
    while sim.poll() is None:
        await recovery.poll()
        await asyncio.sleep(0.25)
    if sim.returncode != 0:
        f.append(f"simulator exited {sim.returncode}: {pipeline.sim_log.read_text()[-2000:]}")
    expected = load.expected()
    row.published = len(expected)

    # 1. The bridge: everything in Kafka (duplicates counted, they come from redelivery).
    records = await read_all(
        pipeline.kafka, pipeline.bridge_topics.telemetry, lambda rs: len(rs) >= len(expected), within_s=90
    )
    await recovery.poll()
    sub_of = {t: s for t, s in zip(pipeline.bridge_topics.telemetry, SUBSYSTEMS, strict=True)}
    in_kafka: Counter[Key] = Counter()
    ends: dict[TopicPartition, int] = {}
    for r in records:
        frame = json.loads(r.value)
        in_kafka[(frame["vin"], sub_of[r.topic], frame["seq"])] += 1
        tp = TopicPartition(r.topic, r.partition)
        ends[tp] = max(ends.get(tp, 0), r.offset + 1)
    row.kafka_dups = sum(n - 1 for n in in_kafka.values())
    lost_in_kafka = expected - set(in_kafka)
    if lost_in_kafka:
        f.append(f"{len(lost_in_kafka)} frames never reached Kafka, e.g. {sorted(lost_in_kafka)[:3]}")

    # 2. The hot path caught up (its group committed every telemetry offset); its alerts.
    if not await wait_group_caught_up(pipeline, pipeline.hot_group, ends, within_s=60):
        f.append(f"hot group did not commit every telemetry offset in 60 s: {pipeline.hot.log_tail(8)}")
    await recovery.poll()
    alert_records = await read_all(pipeline.kafka, [pipeline.alerts_topic], lambda rs: False, within_s=2)
    for r in alert_records:
        tp = TopicPartition(r.topic, r.partition)
        ends[tp] = max(ends.get(tp, 0), r.offset + 1)
    alerts = [json.loads(r.value) for r in alert_records]
    row.episodes, row.raised_repeats, overlaps = alert_stats(alerts)
    row.dup_episodes = len(overlaps)
    # A replay may re-send a `raised` record with the same alert_id (at-least-once, idempotent by
    # alert_id: `fleet alerts` and the lake's readers keep one): counted in the table, not a second
    # episode. A second alert_id for the same episode is (`overlaps`, below).
    if overlaps:
        a, b = overlaps[0]
        f.append(
            f"{len(overlaps)} episodes raised twice, e.g. {a['vin']} {a['rule']} {a.get('signal', '')}: "
            f"{a['alert_id']} started {a['started_at']} and {b['alert_id']} started {b['started_at']}"
        )

    from simulators.fleet import DEFAULT_START_TS

    labels_file = pipeline.tmp_path / "sim" / "labels.jsonl"
    labels = (
        [json.loads(line) for line in labels_file.read_text().splitlines()] if labels_file.exists() else []
    )
    missed = missed_labels(labels, alerts, DEFAULT_START_TS + load.seconds * 1000)
    row.missed_episodes = len(missed)
    if missed:
        f.append(
            f"{len(missed)} simulator faults never raised an alert, e.g. "
            + "; ".join(
                f"{m['vin']} {m['rule']} (fault {m['fault']}, onset {m['onset_ts']})" for m in missed[:3]
            )
        )

    # 3. The cold path committed everything; the audit; the lake's rows.
    try:
        await wait_committed(pipeline.kafka, pipeline.cold_group, pipeline.cold_topics, ends, within_s=60)
    except AssertionError as exc:
        f.append(f"cold group behind: {exc}; {pipeline.cold.log_tail(8)}")
    await recovery.poll()
    verdict = audit(pipeline.cold.env)
    bad = [p for p in verdict["partitions"] if not p["ok"]]
    row.audit = "clean" if verdict["ok"] else f"{len(bad)} bad"
    if not verdict["ok"]:
        f.append(f"`fleet lake audit` not clean: {bad[:3]}")
    keys, row.same_offset = await asyncio.to_thread(lake_keys, pipeline.lake)
    row.in_lake = len(set(keys) & expected)
    missing = expected - set(keys)
    row.missing = len(missing)
    row.dup_rows = sum(n - 1 for n in keys.values())
    if missing:
        f.append(f"{len(missing)} published frames not in the lake, e.g. {sorted(missing)[:3]}")
    if set(keys) - expected:
        f.append(f"{len(set(keys) - expected)} frames in the lake that were never published")
    if row.dup_rows:
        f.append(
            f"{row.dup_rows} duplicate rows by (vin, subsystem, seq) in the lake; Kafka has {row.kafka_dups} "
            f"duplicate records (QoS1 redelivery upstream); {row.same_offset} lake rows repeat a Kafka offset"
        )
    elif row.same_offset:
        f.append(f"{row.same_offset} lake rows repeat a Kafka offset")

    # 4. Every service recovered by itself: alive, answering, its counter moved after the fault.
    await recovery.poll()
    down = []
    for name, service in pipeline.services.items():
        if not service.alive:
            down.append(f"{name} exited ({service.proc.returncode if service.proc else '?'})")
            continue
        try:
            m = await service.metrics()
        except OSError as exc:
            down.append(f"{name} metrics not answering ({exc!r})")
            continue
        if name not in recovery.moved_s:
            down.append(f"{name} counter {service.counter} never moved after the fault")
        if name == "bridge" and m.get("fleet_bridge_mqtt_connected") != 1:
            down.append("bridge not connected to MQTT")
        if name == "cold" and m.get("fleet_cold_paused_partitions", 0) > 0:
            down.append(f"cold still pauses {m['fleet_cold_paused_partitions']:.0f} partitions")
    for problem in down:
        f.append(f"not recovered: {problem}: {pipeline.services[problem.split()[0]].log_tail(8)}")
    took = recovery.seconds
    row.recovered = "no" if down or took is None else f"yes {took:.1f}s"
    return row
