"""Running `fleet cold` as a real process, feeding its topics, and checking the lake."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from schemas.catalog import SUBSYSTEMS
from services.cold.audit import kafka_positions
from services.common.kafka import start_producer
from services.common.metrics import parse_text, scrape
from services.common.probes import free_ports
from services.common.settings import KafkaSettings
from services.hot.alerts import Alert, alert_id
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode
from tests.helpers import FLEET_BIN, run_fleet

PARTITIONS = 6
HOUR_MS = 3_600_000


@dataclass
class ColdTopics:
    """One test's private telemetry topics (prefix + subsystem) and alert topic."""

    prefix: str

    @property
    def telemetry(self) -> list[str]:
        return [self.prefix + s for s in SUBSYSTEMS]

    @property
    def alerts(self) -> str:
        return self.prefix + "alerts"

    @property
    def all(self) -> list[str]:
        return [*self.telemetry, self.alerts]

    async def create(self, admin) -> None:  # type: ignore[no-untyped-def]
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in self.all])

    def env(self, group: str, lake: Path) -> dict[str, str]:
        return {
            "FLEET_COLD_TOPIC_PREFIX": self.prefix,
            "FLEET_COLD_ALERTS_TOPIC": self.alerts,
            "FLEET_COLD_GROUP_ID": group,
            "FLEET_LAKE_DIR": str(lake),
        }


class ColdProcess:
    """`fleet cold` in a subprocess with its own metrics port and log files."""

    def __init__(self, env: dict[str, str], name: str, log_dir: Path):
        self.name = name
        self.metrics_port = free_ports(1)[0]
        self.env = {**env, "FLEET_COLD_METRICS_PORT": str(self.metrics_port)}
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with (self.log_dir / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [FLEET_BIN, "cold"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    async def metrics(self) -> dict[str, float]:
        return parse_text(await scrape("127.0.0.1", self.metrics_port))

    async def wait_assigned(self, within_s: float = 30) -> None:
        """Until the writer owns at least one partition."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                if (await self.metrics()).get("fleet_cold_assigned_partitions", 0) > 0:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} got no partition in {within_s}s: {self.log_tail()}")

    async def wait_written(self, rows: int, within_s: float) -> float:
        """Until this process wrote `rows` rows or `within_s` passed; returns rows written."""
        deadline = time.monotonic() + within_s
        written = 0.0
        while time.monotonic() < deadline:
            written = (await self.metrics()).get("fleet_cold_rows_written_total", 0)
            if written >= rows:
                break
            await asyncio.sleep(0.02)
        return written

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, within_s: float = 20) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.name} ignored SIGTERM for {within_s}s: {self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        text = "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob(f"{self.name}-*.log")))
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Produced:
    """What a feeder wrote: the end offset (last + 1) per partition, and totals."""

    ends: dict[TopicPartition, int] = field(default_factory=dict)
    records: int = 0
    bad: int = 0
    alerts: int = 0
    seq_sum: int = 0  # over valid telemetry frames
    rounds: int = 0  # feed() calls so far: each numbers its frames apart (the writer drops repeats)

    def note(self, tp: TopicPartition, offset: int) -> None:
        self.ends[tp] = max(self.ends.get(tp, 0), offset + 1)
        self.records += 1


async def feed(
    kafka: KafkaSettings,
    topics: ColdTopics,
    frames: int,
    *,
    rate: float = 0,
    cars: int = 50,
    hours: int = 3,
    bad_every: int = 0,
    alert_every: int = 0,
    produced: Produced | None = None,
) -> Produced:
    """Produce `frames` simulator frames as the bridge would (key VIN, headers), `rate` per second.

    Frame `ts` is spread over `hours` hours (a frame's hour = its seq modulo `hours`), so every
    flush writes several files (the journaled path) and late frames are the norm. Every
    `bad_every`-th record is a value the writer cannot type (a reject); every `alert_every`-th
    frame is followed by an alert on the alert topic.
    """
    out = produced or Produced()
    # The same seeded fleet every call: a later call's frames get their own seq range, or they
    # would be the earlier frames again (same vin, seq, ts), which the writer drops as redelivered.
    seq_base = out.rounds * 10_000_000
    out.rounds += 1
    fleet = Fleet(FleetConfig(cars=cars, seed=7))
    producer = await start_producer(kafka, role="cold-test-feed", linger_ms=5)
    pending: list[tuple[TopicPartition | None, asyncio.Future]] = []
    started = time.monotonic()
    sent = 0
    try:
        while sent < frames:
            for vin, sub, frame in fleet.step():
                if sent >= frames:
                    break
                frame = dict(frame)
                frame["ts"] = frame["ts"] - (frame["seq"] % hours) * HOUR_MS
                frame["seq"] += seq_base
                value = encode(frame)
                if bad_every and sent % bad_every == bad_every - 1:
                    value = b'{"vin":"' + vin.encode() + b'","ts":"yesterday"}'
                    out.bad += 1
                else:
                    out.seq_sum += frame["seq"]
                headers = [
                    ("mqtt_topic", f"fleet/{vin}/{sub}".encode()),
                    ("received_ms", str(int(time.time() * 1000)).encode()),
                ]
                fut = await producer.send(topics.prefix + sub, value, key=vin.encode(), headers=headers)
                pending.append((None, fut))
                if alert_every and sent % alert_every == 0:
                    alert = Alert(
                        alert_id=alert_id(vin, "coolant_temp", frame["ts"]),
                        vin=vin,
                        rule="coolant_temp",
                        subsystem="engine",
                        severity="warning",
                        status="raised",
                        value=111.5,
                        threshold=110.0,
                        started_at=frame["ts"],
                        ts=frame["ts"],
                        detected_at=int(time.time() * 1000),
                        message="hot",
                    )
                    pending.append(
                        (None, await producer.send(topics.alerts, alert.to_json(), key=vin.encode()))
                    )
                    out.alerts += 1
                sent += 1
                if rate and sent % 100 == 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            if len(pending) > 5000:
                await _settle(pending, out)
        await _settle(pending, out)
    finally:
        await producer.stop()
    return out


async def _settle(pending: list, out: Produced) -> None:
    for _, fut in pending:
        meta = await fut
        out.note(TopicPartition(meta.topic, meta.partition), meta.offset)
    pending.clear()


async def wait_committed(
    kafka: KafkaSettings,
    group: str,
    topics: ColdTopics,
    ends: dict[TopicPartition, int],
    within_s: float = 60,
) -> dict[TopicPartition, int | None]:
    """Until the group committed every partition's end offset."""
    deadline = time.monotonic() + within_s
    committed: dict[TopicPartition, int | None] = {}
    while time.monotonic() < deadline:
        _, _, committed = await kafka_positions(kafka, group, topics.all)
        if all((committed.get(tp) or 0) >= end for tp, end in ends.items()):
            return committed
        await asyncio.sleep(0.5)
    behind = {
        f"{tp.topic}/{tp.partition}": (committed.get(tp), end)
        for tp, end in ends.items()
        if (committed.get(tp) or 0) < end
    }
    raise AssertionError(f"group {group} did not commit everything in {within_s}s: {behind}")


def audit(env: dict[str, str]) -> dict:
    """`fleet lake audit --json` as a process; returns its verdict (asserting the exit code agrees)."""
    result = run_fleet(["lake", "audit", "--json"], env=env, timeout=60)
    verdict = json.loads(result.stdout)
    assert result.returncode == (0 if verdict["ok"] else 1), result.stderr
    return verdict


def duckdb_totals(lake: Path) -> tuple[int, int]:
    """count(*) and sum(seq) over every telemetry row of the lake, through DuckDB."""
    import duckdb

    glob = str(lake / "*" / "date=*" / "hour=*" / "*.parquet")
    con = duckdb.connect()
    try:
        count, total = con.execute(
            f"select count(*), sum(seq) from read_parquet('{glob}', union_by_name=true) where seq is not null"
        ).fetchone()
    finally:
        con.close()
    return int(count), int(total or 0)
