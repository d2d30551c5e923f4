"""`fleet bench bridge`: QoS1 -> acks=all msg/s of our bridge beside a naive peer and the ceiling.

Method (one private Mosquitto + Tansu, every system measured in the same run):
- Each system under test gets its own persistent MQTT session (subscribed to fleet/#, then
  disconnected) and its own Kafka topics. One QoS1 publish pass of N frames of a seeded fleet
  then queues all N for every session, so every system drains the identical backlog.
- Each system runs alone as its own process (`fleet bridge` with a setting varied, or the
  naive peer). Its rate is taken from the Kafka records it wrote: (records - 1) / (last
  CreateTime - first CreateTime). A record's CreateTime is stamped when the producer appends it,
  so process start-up is excluded and only the steady state is timed.
- The naive peer (bench/apps/naive_bridge.py: paho thread, one synchronous produce per
  message) is measured over a fixed window instead of the whole backlog: it is that slow.
- Two ceilings: MQTT alone (bench/apps/mqtt_drain.py: bare paho draining the same backlog and
  acking at once, no Kafka: the table's ceiling, since it binds) and Kafka alone (aiokafka
  producing the same N frames, key VIN, headers, acks=all, in this process: per-record `send()`
  and per-partition `send_batch`, what our bridge uses; in params).
- Latency: our bridge live, frames published at a fixed rate by another process
  (bench/apps/paced_publisher.py) with `ts` = the publish wall clock; a consumer in this
  process measures publish -> visible in Kafka, p50/p99, beside the bridge's own histogram.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from bench.results import result, write_results
from schemas.catalog import SUBSYSTEMS
from services.common.kafka import make_admin, start_producer
from services.common.metrics import parse_text, scrape
from services.common.mqtt import connect, forget_session, make_client
from services.common.partitioning import partition_for
from services.common.probes import free_ports
from services.common.settings import KafkaSettings, MqttSettings, child_environ
from services.stack.launcher import Stack
from services.stack.settings import StackSettings
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import MqttSink
from simulators.simulation import encode

FLEET_BIN = str(Path(sys.executable).parent / "fleet")
PARTITIONS = 6
CARS = 200  # 1,000 frames per tick
# Our bridge with one setting varied; the first is the default configuration.
VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("default (batch 64 KiB, no linger, no compression)", {}),
    ("batch 16 KiB", {"FLEET_BRIDGE_BATCH_BYTES": "16384"}),
    ("batch 256 KiB", {"FLEET_BRIDGE_BATCH_BYTES": "262144"}),
    ("linger 5 ms", {"FLEET_BRIDGE_LINGER_MS": "5"}),
    ("gzip", {"FLEET_BRIDGE_COMPRESSION": "gzip"}),
]
Message = tuple[str, bytes]


def messages(count: int) -> list[Message]:
    """`count` valid (topic, payload) pairs of a seeded fleet, encoded beforehand."""
    fleet = Fleet(FleetConfig(cars=CARS, seed=3))
    out: list[Message] = []
    while len(out) < count:
        out += [(f"fleet/{vin}/{sub}", encode(frame)) for vin, sub, frame in fleet.step()]
    return out[:count]


def topics_for(prefix: str) -> list[str]:
    """A system's telemetry topics and its dead-letter topic."""
    return [prefix + s for s in SUBSYSTEMS] + [prefix + "deadletter"]


async def create_topics(kafka: KafkaSettings, prefixes: Sequence[str]) -> None:
    """Six partitions each, like infra/topics.yaml."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for p in prefixes for t in topics_for(p)])
    finally:
        await admin.close()


def open_session(mqtt: MqttSettings, client_id: str) -> None:
    """Create a persistent session subscribed to fleet/# and leave it offline (the broker queues)."""
    subscribed = threading.Event()
    client = make_client(mqtt, client_id, persistent=True, v5=False)
    client.on_connect = lambda c, *_: c.subscribe("fleet/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    connect(client, mqtt, persistent=True)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError(f"no SUBACK for {client_id}")
    client.disconnect()
    client.loop_stop()


def preload(mqtt: MqttSettings, backlog: list[Message]) -> float:
    """Publish the backlog at QoS1 until every PUBACK is in; returns the publish rate."""
    sink = MqttSink(mqtt, qos=1, connections=2, client_prefix=f"bench-bridge-pub-{os.getpid()}")
    t0 = time.perf_counter()
    for topic, payload in backlog:
        sink.publish(topic, payload)
        while sink.congested():
            time.sleep(0.0005)
    left = sink.close(300.0)
    if left:
        raise RuntimeError(f"{left} preload messages never acknowledged")
    return len(backlog) / (time.perf_counter() - t0)


async def drain_rate(kafka: KafkaSettings, prefix: str, expected: int, within_s: float) -> tuple[float, int]:
    """Read a system's telemetry topics until `expected` records or `within_s`; (rate, records)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics_for(prefix)[:-1] for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        count, first, last = 0, float("inf"), 0.0
        deadline = time.monotonic() + within_s
        while count < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=20_000)).values():
                count += len(records)
                first = min(first, *(r.timestamp for r in records))
                last = max(last, *(r.timestamp for r in records))
        if count < 2 or last <= first:
            return 0.0, count
        return (count - 1) / ((last - first) / 1000), count
    finally:
        await consumer.stop()


def drain_mqtt(env: dict[str, str], session: str, count: int) -> float:
    """The MQTT-side ceiling: bare paho draining the same backlog (bench/apps/mqtt_drain.py)."""
    argv = [sys.executable, "-m", "bench.apps.mqtt_drain", session, str(count)]
    out = subprocess.run(
        argv, env=child_environ(env), capture_output=True, text=True, timeout=600, check=True
    )
    return float(json.loads(out.stdout)["rate"])


def start_system(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A system under test as a child process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=child_environ(env), stdout=out, stderr=subprocess.STDOUT)


def stop_system(proc: subprocess.Popen[bytes], grace_s: float = 15) -> None:
    """SIGTERM, then SIGKILL after `grace_s`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def bridge_env(stack: Stack, client_id: str, prefix: str, extra: dict[str, str]) -> dict[str, str]:
    """Environment of one `fleet bridge` run against the bench stack."""
    return {
        "FLEET_KAFKA_BOOTSTRAP": stack.settings.kafka_bootstrap,
        "FLEET_MQTT_HOST": stack.settings.host,
        "FLEET_MQTT_PORT": str(stack.settings.mqtt_port),
        "FLEET_BRIDGE_CLIENT_ID": client_id,
        "FLEET_BRIDGE_TOPIC_PREFIX": prefix,
        "FLEET_BRIDGE_DEADLETTER_TOPIC": prefix + "deadletter",
        "FLEET_BRIDGE_METRICS_PORT": str(free_ports(1)[0]),
        "FLEET_LOG_LEVEL": "WARNING",
        **extra,
    }


async def ceilings(kafka: KafkaSettings, backlog: list[Message], prefix: str) -> tuple[float, float]:
    """aiokafka alone producing the backlog with acks=all: (send() per record, send_batch per partition)."""
    records = []
    for topic, payload in backlog:
        _, vin, sub = topic.split("/")
        records.append(
            (prefix + sub, vin.encode(), payload, [("mqtt_topic", topic.encode()), ("received_ms", b"0")])
        )

    producer = await start_producer(kafka, role="bench-ceiling", max_batch_size=65536)
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(t, v, key=k, headers=h) for t, k, v, h in records]
        await asyncio.gather(*futures)
        per_record = len(records) / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        open_batches: dict[tuple[str, int], Any] = {}
        futures = []
        partition_of: dict[bytes, int] = {}
        for i, (t, k, v, h) in enumerate(records):
            p = partition_of.get(k)
            if p is None:
                p = partition_of[k] = partition_for(k, PARTITIONS)
            batch = open_batches.get((t, p))
            if batch is None:
                batch = open_batches[(t, p)] = producer.create_batch()
            if batch.append(key=k, value=v, timestamp=None, headers=h) is None:
                futures.append(await producer.send_batch(batch, t, partition=p))
                batch = open_batches[(t, p)] = producer.create_batch()
                batch.append(key=k, value=v, timestamp=None, headers=h)
            if i % 1000 == 999:  # hand over what one read burst would
                for (bt, bp), b in open_batches.items():
                    futures.append(await producer.send_batch(b, bt, partition=bp))
                open_batches.clear()
        for (bt, bp), b in open_batches.items():
            futures.append(await producer.send_batch(b, bt, partition=bp))
        await asyncio.gather(*futures)
        batched = len(records) / (time.perf_counter() - t0)
    finally:
        await producer.stop()
    return per_record, batched


async def latency(stack: Stack, tmp: Path, rate: int, seconds: float, watch: bool) -> dict[str, float]:
    """Our bridge live at `rate` msg/s; with `watch`, a consumer measures publish -> visible, in ms.

    Without `watch` only the bridge's own histogram is read: on Tansu a consumer polling the
    topics while they are written slows the writes themselves (its fetches get dearer as the
    logs grow), so the two views are measured in separate runs.
    """
    prefix, client_id = f"lat{int(watch)}.", f"bench-bridge-latency-{int(watch)}"
    await create_topics(stack.kafka, [prefix])
    env = bridge_env(stack, client_id, prefix, {})
    proc = start_system([FLEET_BIN, "bridge"], env, tmp / f"latency-{int(watch)}.log")
    port = int(env["FLEET_BRIDGE_METRICS_PORT"])
    lags: list[float] = []
    try:
        for _ in range(200):
            try:
                if parse_text(await scrape("127.0.0.1", port)).get("fleet_bridge_mqtt_connected") == 1:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.05)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=stack.kafka.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        parts = [TopicPartition(t, p) for t in topics_for(prefix)[:-1] for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        publisher = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "bench.apps.paced_publisher", str(rate), str(seconds)],
            env=child_environ(env),
            stdout=asyncio.subprocess.PIPE,
        )
        if not watch:
            out, _ = await publisher.communicate()  # the consumer only reads once all is written
        published = asyncio.ensure_future(publisher.communicate())
        try:
            deadline = float("inf")
            while True:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    now = time.time() * 1000
                    lags.extend(now - json.loads(r.value)["ts"] for r in records)
                if published.done():
                    sent = json.loads(out if not watch else published.result()[0])["sent"]
                    if len(lags) >= sent:
                        break
                    deadline = min(deadline, time.monotonic() + 30)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"latency run: {len(lags)} of {sent} records seen")
        finally:
            await published
            await consumer.stop()
        bridge_metrics = parse_text(await scrape("127.0.0.1", port))
    finally:
        stop_system(proc)
        forget_session(stack.mqtt, client_id)
    lags.sort()
    figures = {
        "messages": len(lags),
        # the bridge's own view: PUBLISH read -> Kafka ack -> PUBACK (upper bounds of histogram buckets)
        "bridge_p50_ms_at_most": 1000 * bucket_quantile(bridge_metrics, 0.5),
        "bridge_p99_ms_at_most": 1000 * bucket_quantile(bridge_metrics, 0.99),
    }
    if watch:
        figures |= {"p50_ms": lags[len(lags) // 2], "p99_ms": lags[int(len(lags) * 0.99)], "max_ms": lags[-1]}
    return figures


def bucket_quantile(metrics: dict[str, float], q: float) -> float:
    """Upper bound of the bridge latency histogram bucket holding the q-quantile (seconds)."""
    name = "fleet_bridge_latency_seconds"
    total = metrics[f"{name}_count"]
    buckets = sorted(
        (float("inf") if le == "+Inf" else float(le), n)
        for key, n in metrics.items()
        if key.startswith(f"{name}_bucket")
        for le in [key.split('le="')[1].rstrip('"}')]
    )
    return next(le for le, n in buckets if n >= q * total)


async def run(
    tmp: Path, count: int, naive_window_s: float, latency_s: float, latency_rate: int
) -> list[dict[str, Any]]:
    """Start a private stack, measure every system, stop the stack."""
    mqtt_port, kafka_port = free_ports(2)
    stack = Stack(StackSettings(dir=tmp / "stack", mqtt_port=mqtt_port, kafka_port=kafka_port))
    await stack.start()
    try:
        # First, on the fresh stack: Tansu's fetch slows as its logs grow (see README), and
        # the drains below leave 700k records behind.
        lat = await latency(stack, tmp, latency_rate, latency_s, watch=False)
        watched = await latency(stack, tmp, latency_rate, latency_s, watch=True)
        systems = [(f"ours-{i}", f"ours{i}.", name, extra) for i, (name, extra) in enumerate(VARIANTS)]
        systems.append(("naive", "naive.", "naive", {}))
        systems.append(("mqtt", "mqtt.", "bare paho drain", {}))
        await create_topics(stack.kafka, [prefix for _, prefix, _, _ in systems] + ["ceiling."])
        for client_id, *_ in systems:
            await asyncio.to_thread(open_session, stack.mqtt, f"bench-bridge-{client_id}")
        backlog = messages(count)
        size = sum(len(p) for _, p in backlog) // len(backlog)
        publish_rate = await asyncio.to_thread(preload, stack.mqtt, backlog)

        rates: dict[str, tuple[float, int]] = {}
        for client_id, prefix, _name, extra in systems:
            session = f"bench-bridge-{client_id}"
            env = bridge_env(stack, session, prefix, extra)
            if client_id == "mqtt":
                mqtt_ceiling = await asyncio.to_thread(drain_mqtt, env, session, count)
                await asyncio.to_thread(forget_session, stack.mqtt, session)
                continue
            if client_id == "naive":
                argv = [sys.executable, "-m", "bench.apps.naive_bridge", session, prefix]
                within = naive_window_s
            else:
                argv = [FLEET_BIN, "bridge"]
                within = 300.0
            proc = start_system(argv, env, tmp / f"{client_id}.log")
            try:
                rates[client_id] = await drain_rate(stack.kafka, prefix, count, within)
            finally:
                stop_system(proc)
                await asyncio.to_thread(forget_session, stack.mqtt, session)
            if client_id != "naive" and rates[client_id][1] < count:
                raise RuntimeError(
                    f"{client_id} wrote {rates[client_id][1]} of {count}: see {tmp / client_id}.log"
                )

        per_record, batched = await ceilings(stack.kafka, backlog, "ceiling.")
    finally:
        await stack.stop()

    ours_rate = rates["ours-0"][0]
    naive_rate, naive_records = rates["naive"]
    common = {"messages": count, "payload_bytes": size, "cars": CARS, "qos": 1, "acks": "all"}
    out = [
        result(
            "bridge",
            "MQTT QoS1 -> Kafka acks=all, one process",
            "msg/s",
            ours_rate,
            peer=naive_rate,
            peer_name="naive: paho on_message -> one synchronous produce per message",
            ceiling=mqtt_ceiling,
            params={
                **common,
                "ceiling": "bare paho draining the same backlog, acking at once, no Kafka",
                "kafka_ceiling_send_batch_msg_s": round(batched),
                "kafka_ceiling_send_per_record_msg_s": round(per_record),
                "naive_records_in_window": naive_records,
                "naive_window_s": naive_window_s,
                "preload_publish_msg_s": round(publish_rate),
                "goal": ">= 10,000 msg/s and >= 10x the naive peer",
            },
        )
    ]
    for i, (name, _extra) in enumerate(VARIANTS[1:], start=1):
        out.append(
            result(
                "bridge",
                f"producer tuning: {name}",
                "msg/s",
                rates[f"ours-{i}"][0],
                peer=ours_rate,
                peer_name="default settings",
                params=common,
            )
        )
    out.append(
        result(
            "bridge",
            f"MQTT read -> Kafka ack -> PUBACK, p99 at {latency_rate:,} msg/s (bridge histogram)",
            "ms",
            lat["bridge_p99_ms_at_most"],
            lower_is_better=True,
            params={
                "bound": "upper bound of the histogram bucket holding the quantile",
                "p50_ms_at_most": lat["bridge_p50_ms_at_most"],
                "messages": lat["messages"],
                "rate_msg_s": latency_rate,
                "seconds": latency_s,
                "consumer": "none while publishing (records read and counted afterwards)",
            },
        )
    )
    out.append(
        result(
            "bridge",
            f"publish -> visible to a polling Kafka consumer, p99 at {latency_rate:,} msg/s",
            "ms",
            watched["p99_ms"],
            lower_is_better=True,
            params={
                **{k: round(v, 1) for k, v in watched.items()},
                "rate_msg_s": latency_rate,
                "seconds": latency_s,
            },
        )
    )
    return out


def main(quick: bool = False) -> Path:
    """Run and write bench/results/bridge.json."""
    count, naive_window, lat_s = (20_000, 10.0, 5.0) if quick else (100_000, 20.0, 20.0)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-bridge-") as tmp:
        results = asyncio.run(run(Path(tmp), count, naive_window, lat_s, latency_rate=2000))
    return write_results("bridge", results)


if __name__ == "__main__":
    print(json.dumps(json.loads(main(quick=True).read_text()), indent=2))
