"""The QuixStreams peer of `fleet bench hot`: preload the five topics, run the peer, read its rate.

    await preload(stack.kafka, "quix.", 200_000)            # five topics, 6 partitions, N frames
    figure = await asyncio.to_thread(run_peer, stack.kafka, "quix.", 200_000, tmp)
    figure["events_per_s"]                                  # also "events", "seconds", "alerts"

`preload` writes what the bridge would have written: N frames of a seeded fleet (with faults, so
the rules raise and clear alerts), key VIN, the bridge's headers, acks=all, into `<prefix><subsystem>`
created beforehand with six partitions and infra/topics.yaml's config, plus `<prefix>alerts`.
Give each system under test its own prefix (the same N frames each) or its own consumer group.

`run_peer` runs bench/apps/quix_rules.py as its own process (fresh consumer group and state
dir) until it has consumed all N frames, and returns what it printed: events consumed and
the rate between its first and last processed event (start-up, group join and the final
commit excluded).

Tansu and QuixStreams: QuixStreams derives its changelog topics' config from the input topics'
`retention.ms`, read with DescribeConfigs; Tansu returns only the configs a topic was created
with, so the input topics must be created with it (infra/topics.yaml does). The peer's own
Tansu setting (one record per producer batch) is explained in bench/apps/quix_rules.py.

    python -m bench.hot_peer [N]     # a private stack, N frames (default 200,000): median of 3 runs
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from bench.results import median
from schemas.catalog import SUBSYSTEMS
from services.common.kafka import make_admin, start_producer
from services.common.probes import free_ports
from services.common.settings import KafkaSettings, child_environ
from services.stack.launcher import Stack
from services.stack.settings import StackSettings
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode

PARTITIONS = 6
CARS = 200  # 1,000 frames per vehicle second
SEED = 3
FAULT_RATE = 5.0  # faults per car per hour of vehicle time: a few dozen episodes in 200,000 frames
# infra/topics.yaml's telemetry config. QuixStreams needs retention.ms on its input topics.
TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "604800000"}


async def paced_frames(
    fleet: Fleet, slices: int, seconds: float | None = None
) -> AsyncIterator[tuple[int, str, str, dict[str, Any]]]:
    """(tick, vin, subsystem, frame) live: a tick of vehicle time per wall-clock second, spread
    over `slices` even parts of it, each frame's `ts` the wall clock as it is yielded. Ends at the
    first tick boundary after `seconds` (never when None)."""
    t0 = time.monotonic()
    tick = 0
    while seconds is None or time.monotonic() - t0 < seconds:
        frames = fleet.step()
        per_slice = max(1, len(frames) // slices)
        for s in range(0, len(frames), per_slice):
            for vin, sub, frame in frames[s : s + per_slice]:
                frame["ts"] = int(time.time() * 1000)
                yield tick, vin, sub, frame
            due = t0 + tick + (s // per_slice + 1) / slices
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
        tick += 1


def topics_for(prefix: str) -> list[str]:
    """The five telemetry topics of a system under test."""
    return [prefix + s for s in SUBSYSTEMS]


def frames(count: int, cars: int = CARS, seed: int = SEED, fault_rate: float = FAULT_RATE) -> list[Any]:
    """`count` (subsystem, vin, payload) of a seeded fleet, encoded beforehand."""
    fleet = Fleet(FleetConfig(cars=cars, seed=seed, fault_rate=fault_rate))
    out: list[Any] = []
    while len(out) < count:
        out += [(sub, vin, encode(frame)) for vin, sub, frame in fleet.step()]
    return out[:count]


async def create_topics(kafka: KafkaSettings, prefix: str, alerts_topic: str | None = None) -> None:
    """The five telemetry topics (and the alerts topic), six partitions, infra/topics.yaml's config."""
    names = topics_for(prefix) + [alerts_topic or prefix + "alerts"]
    admin = make_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1, topic_configs=TOPIC_CONFIG) for t in names])
    finally:
        await admin.close()


async def preload(
    kafka: KafkaSettings,
    prefix: str,
    count: int,
    *,
    cars: int = CARS,
    seed: int = SEED,
    fault_rate: float = FAULT_RATE,
    alerts_topic: str | None = None,
    backlog: list[Any] | None = None,
) -> dict[str, Any]:
    """Create the topics, write `count` frames (or `backlog`, from `frames()`); returns what was written."""
    await create_topics(kafka, prefix, alerts_topic)
    backlog = backlog if backlog is not None else frames(count, cars, seed, fault_rate)
    producer = await start_producer(kafka, role="bench-hot-preload", max_batch_size=65536)
    t0 = time.perf_counter()
    try:
        pending = []
        for sub, vin, payload in backlog:
            received = str(int(time.time() * 1000)).encode()
            headers = [("mqtt_topic", f"fleet/{vin}/{sub}".encode()), ("received_ms", received)]
            pending.append(await producer.send(prefix + sub, payload, key=vin.encode(), headers=headers))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - t0
    return {
        "frames": len(backlog),
        "cars": cars,
        "seed": seed,
        "fault_rate": fault_rate,
        "payload_bytes": sum(len(p) for _, _, p in backlog) // max(1, len(backlog)),
        "preload_msg_s": round(len(backlog) / seconds),
    }


def run_peer(
    kafka: KafkaSettings,
    prefix: str,
    count: int,
    workdir: Path,
    *,
    alerts_topic: str | None = None,
    group: str | None = None,
    commit_interval_s: float = 1.0,
    idle_s: float = 15.0,
    extra_args: tuple[str, ...] = (),
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Run the QuixStreams peer over `count` preloaded frames; its printed figure, plus where it logged.

    Raises RuntimeError when it exits with an error or consumed fewer than `count` messages.
    """
    group = group or f"bench-hot-quix-{uuid.uuid4().hex[:8]}"
    state_dir = workdir / f"{group}-state"
    log = workdir / f"{group}.log"
    argv = [
        sys.executable,
        "-m",
        "bench.apps.quix_rules",
        prefix,
        alerts_topic or prefix + "alerts",
        group,
        "--count",
        str(count),
        "--idle",
        str(idle_s),
        "--commit-interval",
        str(commit_interval_s),
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    env = child_environ({"FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap})
    with log.open("wb") as err:
        done = subprocess.run(
            argv, env=env, stdout=subprocess.PIPE, stderr=err, timeout=timeout_s, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"quix_rules exited with {done.returncode}: see {log}")
    figure: dict[str, Any] = json.loads(done.stdout)
    if figure["events"] < count:
        raise RuntimeError(f"quix_rules consumed {figure['events']} of {count} messages: see {log}")
    return {**figure, "group": group, "commit_interval_s": commit_interval_s, "log": str(log)}


async def read_records(kafka: KafkaSettings, topic: str, within_s: float = 5.0) -> list[bytes]:
    """Every record value of `topic`, reading until `within_s` pass without a new one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        values: list[bytes] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < within_s:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                values += [r.value for r in records if r.value is not None]
            if batch:
                quiet_since = time.monotonic()
        return values
    finally:
        await consumer.stop()


async def measure(tmp: Path, count: int, repeats: int = 3) -> dict[str, Any]:
    """A private stack, one preload, `repeats` peer runs (fresh group each); the median with its context."""
    mqtt_port, kafka_port = free_ports(2)
    stack = Stack(StackSettings(dir=tmp / "stack", mqtt_port=mqtt_port, kafka_port=kafka_port))
    await stack.start()
    runs = []
    try:
        written = await preload(stack.kafka, "quix.", count)
        for _ in range(repeats):
            load_before = os.getloadavg()[0]
            figure = await asyncio.to_thread(run_peer, stack.kafka, "quix.", count, tmp)
            figure["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            del figure["log"]  # in `tmp`, gone when this returns
            runs.append(figure)
        alerts = await read_records(stack.kafka, "quix.alerts")
    finally:
        await stack.stop()
    return {
        "events_per_s": median([r["events_per_s"] for r in runs]),
        "runs": runs,
        "alerts_on_topic": len(alerts),  # every run writes its alerts to the same topic
        "preload": written,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory(prefix="fleet-bench-hot-peer-") as tmp:
        print(json.dumps(asyncio.run(measure(Path(tmp), n)), indent=2))
