"""Running `fleet bridge` as a real process, and reading back what reached Kafka."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from schemas.catalog import SUBSYSTEMS
from services.common.metrics import parse_text, scrape
from services.common.probes import free_ports
from services.common.settings import KafkaSettings, MqttSettings
from simulators.fleet import vin_for
from tests.helpers import FLEET_BIN

PARTITIONS = 6


@dataclass
class BridgeTopics:
    """One test's private Kafka topics: prefix + subsystem, and a dead-letter topic."""

    prefix: str

    @property
    def telemetry(self) -> list[str]:
        return [self.prefix + s for s in SUBSYSTEMS]

    @property
    def deadletter(self) -> str:
        return self.prefix + "deadletter"

    async def create(self, admin) -> None:  # type: ignore[no-untyped-def]
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in [*self.telemetry, self.deadletter]])

    def env(self) -> dict[str, str]:
        return {"FLEET_BRIDGE_TOPIC_PREFIX": self.prefix, "FLEET_BRIDGE_DEADLETTER_TOPIC": self.deadletter}


class BridgeProcess:
    """`fleet bridge` in a subprocess with its own client id and metrics port."""

    def __init__(
        self, fleet_env: dict[str, str], topics: BridgeTopics, client_id: str, log_dir: Path, **extra: str
    ):
        self.client_id = client_id
        self.metrics_port = free_ports(1)[0]
        self.env = {
            **fleet_env,
            **topics.env(),
            "FLEET_BRIDGE_CLIENT_ID": client_id,
            "FLEET_BRIDGE_METRICS_PORT": str(self.metrics_port),
            "FLEET_BRIDGE_RETRY_MAX_S": "1",
            **extra,
        }
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"{self.client_id}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [FLEET_BIN, "bridge"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    async def wait_ready(self, within_s: float = 20) -> None:
        """Until the metrics endpoint says the MQTT session is up."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                if (await self.metrics()).get("fleet_bridge_mqtt_connected") == 1:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"bridge not ready in {within_s}s: {self.log_tail()}")

    async def metrics(self) -> dict[str, float]:
        return parse_text(await scrape("127.0.0.1", self.metrics_port))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, within_s: float = 15) -> int:
        """SIGTERM, wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"bridge ignored SIGTERM for {within_s}s: {self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        text = "".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob(f"{self.client_id}-*.log"))
        )
        return "\n".join(text.splitlines()[-lines:])


async def read_all(kafka: KafkaSettings, topics: list[str], enough, within_s: float = 60) -> list:  # type: ignore[no-untyped-def]
    """Read `topics` from the beginning until `enough(records)` or the time is up.

    Never trusts end offsets (Tansu under-reports the high watermark): reads until the
    expected content is there, then keeps reading 1 s more to catch duplicates and extras.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        records: list = []
        deadline = time.monotonic() + within_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for rs in batch.values():
                records.extend(rs)
            if settle_until is None and enough(records):
                settle_until = time.monotonic() + 1.0
            if settle_until is not None and time.monotonic() >= settle_until and not batch:
                break
        return records
    finally:
        await consumer.stop()


def expected_keys(cars: int, seconds: int) -> set[tuple[str, str, int]]:
    """Every (vin, subsystem, seq) a `fleet simulate --cars N --duration S` run publishes (1 Hz)."""
    return {(vin_for(i), s, seq) for i in range(cars) for s in SUBSYSTEMS for seq in range(1, seconds + 1)}


@dataclass
class Audit:
    """Loss, duplicates and order of the telemetry that reached Kafka."""

    missing: set
    duplicates: int
    unexpected: set
    out_of_order: list
    wrong_partition: int


def audit(records: list, topics: BridgeTopics, expected: set[tuple[str, str, int]]) -> Audit:
    """Compare Kafka with what was published.

    Order: after a redelivery a message may appear twice; keeping each message's *last* copy,
    every (vin, subsystem) must read in publish order (acks are a prefix: a message acked
    earlier precedes everything redelivered after it).
    """
    from services.common.partitioning import partition_for

    by_topic = {t: s for t, s in zip(topics.telemetry, SUBSYSTEMS, strict=True)}
    seen: Counter[tuple[str, str, int]] = Counter()
    last_pos: dict[tuple[str, str, int], tuple[int, int]] = {}
    wrong_partition = 0
    for r in records:
        if r.topic not in by_topic:
            continue
        frame = json.loads(r.value)
        key = (frame["vin"], by_topic[r.topic], frame["seq"])
        seen[key] += 1
        last_pos[key] = (r.partition, r.offset)
        if r.key != frame["vin"].encode() or r.partition != partition_for(r.key, PARTITIONS):
            wrong_partition += 1
    streams: dict[tuple[str, str], list[tuple[tuple[int, int], int]]] = defaultdict(list)
    for (vin, sub, seq), pos in last_pos.items():
        streams[(vin, sub)].append((pos, seq))
    out_of_order = []
    for stream, items in streams.items():
        seqs = [seq for _, seq in sorted(items)]
        if seqs != sorted(seqs):
            out_of_order.append(stream)
    return Audit(
        missing=expected - set(seen),
        duplicates=sum(n - 1 for n in seen.values()),
        unexpected=set(seen) - expected,
        out_of_order=out_of_order,
        wrong_partition=wrong_partition,
    )


def simulate_args(mqtt: MqttSettings, out_dir: Path, cars: int, seconds: int, *extra: str) -> list[str]:
    return [
        FLEET_BIN,
        "simulate",
        "--host",
        mqtt.host,
        "--port",
        str(mqtt.port),
        "--cars",
        str(cars),
        "--duration",
        str(seconds),
        "--out-dir",
        str(out_dir),
        *extra,
    ]
