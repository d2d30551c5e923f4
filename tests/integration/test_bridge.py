"""`fleet bridge` between the real Mosquitto and Tansu: nothing lost, acks after Kafka, in order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter

import paho.mqtt.client as paho
import pytest

from services.common.mqtt import connect, forget_session, make_client
from simulators.badframes import CORPUS, make_bad
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode
from tests.integration.bridge_support import (
    BridgeProcess,
    BridgeTopics,
    audit,
    expected_keys,
    read_all,
    simulate_args,
)
from tests.integration.conftest import restart_child


@pytest.fixture
async def topics(admin, names) -> BridgeTopics:  # type: ignore[no-untyped-def]
    """Private telemetry + dead-letter topics for one test."""
    created = BridgeTopics(prefix=names("t") + ".")
    await created.create(admin)
    return created


@pytest.fixture
def bridges(fleet_env, topics, mqtt, tmp_path, names):  # type: ignore[no-untyped-def]
    """Factory of bridge processes; all stopped and their broker sessions removed afterwards."""
    made: list[BridgeProcess] = []

    def make(**extra: str) -> BridgeProcess:
        bridge = BridgeProcess(fleet_env, topics, names("bridge"), tmp_path, **extra)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.stop()
        forget_session(mqtt, bridge.client_id)


def simulate(mqtt, tmp_path, cars: int, seconds: int, *extra: str) -> None:
    result = subprocess.run(
        simulate_args(mqtt, tmp_path / "sim", cars, seconds, "--speedup", "0", *extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def start_simulation(mqtt, tmp_path, cars: int, seconds: int, speedup: float) -> subprocess.Popen[bytes]:
    """`fleet simulate` in the background, paced at `speedup`; its output in tmp_path/sim.log."""
    with (tmp_path / "sim.log").open("wb") as log:
        return subprocess.Popen(
            simulate_args(mqtt, tmp_path / "sim", cars, seconds, "--speedup", str(speedup)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def identity_holds(metrics: dict) -> bool:
    """received = produced + deadlettered (every reason) + in_flight + released."""
    deadlettered = sum(v for k, v in metrics.items() if k.startswith("fleet_bridge_deadlettered_total"))
    return metrics["fleet_bridge_received_total"] == (
        metrics["fleet_bridge_produced_total"]
        + deadlettered
        + metrics["fleet_bridge_in_flight"]
        + metrics["fleet_bridge_released_total"]
    )


async def wait_for_metric(bridge: BridgeProcess, name: str, value: float, within_s: float = 60) -> dict:
    deadline = time.monotonic() + within_s
    metrics: dict = {}
    while time.monotonic() < deadline:
        metrics = await bridge.metrics()
        if metrics.get(name, 0) >= value:
            return metrics
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} reached {metrics.get(name)} of {value} in {within_s}s: {bridge.log_tail()}")


async def test_every_frame_lands_once_in_its_partition_in_order(bridges, topics, mqtt, kafka, tmp_path):
    bridge = bridges()
    bridge.start()
    await bridge.wait_ready()
    simulate(mqtt, tmp_path, cars=20, seconds=10)
    expected = expected_keys(20, 10)

    metrics = await wait_for_metric(bridge, "fleet_bridge_produced_total", len(expected))
    records = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= len(expected))
    result = audit(records, topics, expected)

    assert not result.missing and not result.unexpected
    assert result.duplicates == 0  # no outage, no redelivery
    assert result.out_of_order == [] and result.wrong_partition == 0
    headers = dict(records[0].headers)
    assert headers["mqtt_topic"].decode().startswith("fleet/") and int(headers["received_ms"]) > 0
    # the accounting identity, with nothing left in flight
    assert metrics["fleet_bridge_received_total"] == len(expected)
    assert identity_holds(metrics)
    assert metrics["fleet_bridge_acked_total"] == len(expected)
    assert metrics["fleet_bridge_latency_seconds_count"] == len(expected)
    assert bridge.stop() == 0


async def test_kill_9_mid_stream_loses_nothing(bridges, topics, mqtt, kafka, tmp_path):
    cars, seconds = 40, 60  # 12,000 frames at QoS1, published over ~6 s of wall time
    bridge = bridges()
    bridge.start()
    await bridge.wait_ready()
    sim = start_simulation(mqtt, tmp_path, cars, seconds, speedup=10)
    kills = 0
    try:
        while sim.poll() is None and kills < 6:
            await asyncio.sleep(random.Random(kills).uniform(0.4, 1.2))
            bridge.kill()
            kills += 1
            bridge.start()
            await bridge.wait_ready()
        assert sim.wait(120) == 0, (tmp_path / "sim.log").read_text()
    finally:
        if sim.poll() is None:
            sim.kill()
    assert kills >= 3, "the simulation ended before the bridge was killed 3 times"
    expected = expected_keys(cars, seconds)
    records = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= len(expected), within_s=90)
    result = audit(records, topics, expected)
    print(
        f"killed {kills}x: {len(records)} records for {len(expected)} frames, {result.duplicates} duplicates"
    )
    assert not result.missing, f"{len(result.missing)} frames lost, e.g. {sorted(result.missing)[:3]}"
    assert not result.unexpected
    assert result.out_of_order == []
    assert len(records) == len(expected) + result.duplicates


async def test_malformed_input_is_dead_lettered_with_its_reason(bridges, topics, mqtt, kafka):
    bridge = bridges()
    bridge.start()
    await bridge.wait_ready()
    assert len(CORPUS) >= 30
    fleet = Fleet(FleetConfig(cars=3, seed=5))
    rng = random.Random(11)
    publisher = make_client(mqtt, "malformed-publisher")
    connect(publisher, mqtt)
    publisher.loop_start()
    sent_bad: list[tuple[str, bytes, str]] = []
    outside: list[str] = []
    valid = 0
    try:
        for kind in sorted(CORPUS):
            frames = fleet.step()  # 15 valid frames between bad ones
            for vin, subsystem, frame in frames:
                publisher.publish(f"fleet/{vin}/{subsystem}", encode(frame), qos=1).wait_for_publish(5)
                valid += 1
            vin, subsystem, frame = frames[0]
            topic, payload, reason = make_bad(kind, vin, subsystem, frame, rng)
            publisher.publish(topic, payload, qos=1).wait_for_publish(5)
            if paho.topic_matches_sub("fleet/#", topic):
                sent_bad.append((topic, payload, reason))
            else:
                outside.append(kind)  # e.g. cars/<vin>/engine: not subscribed, never reaches the bridge
    finally:
        publisher.disconnect()
        publisher.loop_stop()

    await wait_for_metric(bridge, "fleet_bridge_received_total", valid + len(sent_bad))
    dead = await read_all(kafka, [topics.deadletter], lambda rs: len(rs) >= len(sent_bad))
    got = [
        (dict(r.headers)["mqtt_topic"].decode(), r.value, dict(r.headers)["dlq_reason"].decode())
        for r in dead
    ]
    assert sorted(got) == sorted(sent_bad)  # each kind, its reason, its exact bytes and topic
    assert len(sent_bad) >= 30 and outside == ["topic_wrong_root"]
    for r in dead:
        assert dict(r.headers)["dlq_detail"]
    telemetry = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= valid)
    assert len(telemetry) == valid
    metrics = await wait_for_metric(bridge, "fleet_bridge_acked_total", valid + len(sent_bad))
    assert metrics["fleet_bridge_in_flight"] == 0
    by_reason = Counter(reason for _, _, reason in sent_bad)
    for reason, n in by_reason.items():
        assert metrics[f'fleet_bridge_deadlettered_total{{reason="{reason}"}}'] == n
    assert metrics["fleet_bridge_produced_total"] == valid
    assert identity_holds(metrics)


async def test_two_bridges_on_a_shared_subscription_split_the_load(
    bridges, topics, mqtt, kafka, tmp_path, names
):
    group = names("share")
    pair = [bridges(FLEET_BRIDGE_SHARE_GROUP=group), bridges(FLEET_BRIDGE_SHARE_GROUP=group)]
    for bridge in pair:
        bridge.start()
    for bridge in pair:
        await bridge.wait_ready()
    simulate(mqtt, tmp_path, cars=30, seconds=20)
    expected = expected_keys(30, 20)
    records = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= len(expected))
    result = audit(records, topics, expected)
    assert not result.missing and not result.unexpected and result.duplicates == 0
    received = [(await b.metrics())["fleet_bridge_received_total"] for b in pair]
    assert sum(received) == len(expected)
    assert min(received) > 0.3 * len(expected), f"unbalanced split {received}"


async def test_kafka_paused_for_10_s_under_load_loses_nothing(bridges, topics, mqtt, kafka, stack, tmp_path):
    tansu = next(c for c in stack.children if c.name == "tansu")
    bridge = bridges()
    bridge.start()
    await bridge.wait_ready()
    cars, seconds = 40, 40  # 8,000 frames over ~8 s of wall time
    sim = start_simulation(mqtt, tmp_path, cars, seconds, speedup=5)
    try:
        await asyncio.sleep(1.5)
        before = await bridge.metrics()
        os.kill(tansu.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(10)
            during = await bridge.metrics()
        finally:
            os.kill(tansu.pid, signal.SIGCONT)
        assert sim.wait(120) == 0, (tmp_path / "sim.log").read_text()
    finally:
        if sim.poll() is None:
            sim.kill()
    expected = expected_keys(cars, seconds)
    after = await wait_for_metric(bridge, "fleet_bridge_produced_total", len(expected), within_s=90)
    records = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= len(expected), within_s=60)
    result = audit(records, topics, expected)
    assert not result.missing and not result.unexpected and result.out_of_order == []
    # while the broker was frozen nothing was acked beyond what Kafka had confirmed
    assert during["fleet_bridge_produced_total"] <= before["fleet_bridge_produced_total"] + 2000
    assert during["fleet_bridge_in_flight"] > 0
    assert identity_holds(during) and identity_holds(after)  # also mid-outage, with messages in flight
    assert after["fleet_bridge_mqtt_connected"] == 1
    assert bridge.proc.poll() is None  # never exited


async def test_mqtt_broker_restart_mid_drain_loses_nothing(bridges, topics, mqtt, kafka, stack, tmp_path):
    bridge = bridges()
    bridge.start()
    await bridge.wait_ready()  # the persistent session and its subscription now exist
    assert bridge.stop() == 0
    cars, seconds = 40, 60
    simulate(mqtt, tmp_path, cars, seconds)  # 12,000 frames queued in Mosquitto for the bridge
    bridge.start()
    await bridge.wait_ready()
    await asyncio.sleep(0.3)
    await restart_child(stack, "mosquitto")  # SIGTERM: Mosquitto saves its sessions, starts again
    expected = expected_keys(cars, seconds)
    records = await read_all(kafka, topics.telemetry, lambda rs: len(rs) >= len(expected), within_s=90)
    result = audit(records, topics, expected)
    assert not result.missing and not result.unexpected and result.out_of_order == []
    metrics = await bridge.metrics()
    assert metrics["fleet_bridge_mqtt_disconnects_total"] >= 1
    assert metrics["fleet_bridge_mqtt_connected"] == 1
    assert bridge.proc.poll() is None
