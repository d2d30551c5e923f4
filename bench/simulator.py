"""`fleet bench simulator`: the pure model's frames/s, and MQTT publish rates beside a bare paho loop.

- model: `Fleet.step()` for 1,000 cars, frames (one car, one subsystem, one tick) per second.
- publish: our path (JSON encode + `MqttSink.publish`, the default pool of connections) over frames
  generated beforehand, until every message is acknowledged (QoS1) or handed to the socket
  (QoS0); the ceiling is a bare paho client publishing a constant payload of the same size at
  the same QoS in the same run; the peer of the pool is one connection per car.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.results import result, write_results
from services.common.mqtt import connect, make_client
from services.common.probes import free_ports
from services.common.settings import MqttSettings
from services.stack.launcher import Stack
from services.stack.settings import StackSettings
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import MqttSink
from simulators.simulation import SimulatorSettings, encode

POOL = SimulatorSettings().connections  # what `fleet simulate` uses by default


def model_rate(cars: int, ticks: int) -> float:
    """Frames per second of the pure model."""
    fleet = Fleet(FleetConfig(cars=cars, seed=1, fault_rate=1.0))
    fleet.step()  # warm caches
    t0 = time.perf_counter()
    frames = 0
    for _ in range(ticks):
        frames += len(fleet.step())
    return frames / (time.perf_counter() - t0)


def frames_for(cars: int, ticks: int) -> list[tuple[str, dict[str, object]]]:
    """(topic, frame) pairs to publish, generated before the clock starts."""
    fleet = Fleet(FleetConfig(cars=cars, seed=2))
    return [(f"fleet/{v}/{s}", f) for _ in range(ticks) for v, s, f in fleet.step()]


def ours_rate(
    mqtt: MqttSettings, frames: list[tuple[str, dict[str, object]]], qos: int, per_car: bool
) -> float:
    """Our publish path, messages per second until all are confirmed."""
    credentials = {topic.split("/")[1]: "" for topic, _ in frames} if per_car else None
    sink = MqttSink(
        mqtt,
        qos=qos,
        connections=POOL,
        client_prefix=f"bench-{os.getpid()}-{qos}-{per_car}",
        credentials=credentials,
    )
    if credentials:  # connect every car before the clock starts, as a running fleet would be
        sink.connect_cars(list(credentials))
    t0 = time.perf_counter()
    for topic, frame in frames:
        sink.publish(topic, encode(frame))
        while sink.congested():
            time.sleep(0.0005)
    left = sink.close(120.0)
    elapsed = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"{left} messages never acknowledged")
    return len(frames) / elapsed


def ceiling_rate(mqtt: MqttSettings, count: int, size: int, qos: int) -> float:
    """A bare paho client publishing one constant payload, until all are confirmed.

    It keeps at most 1,000 messages unconfirmed (paho's in-flight limit): beyond that paho's own
    queue makes every PUBACK scan the whole queue, and the loop measures that instead of MQTT.
    """
    client = make_client(mqtt, f"bench-ceiling-{os.getpid()}-{qos}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    done = threading.Event()
    acked = [0]

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        if acked[0] == count:
            done.set()

    client.on_publish = on_publish
    connect(client, mqtt)
    client.loop_start()
    payload = b"x" * size
    t0 = time.perf_counter()
    for sent in range(count):
        client.publish("fleet/1FLEET00000000000/engine", payload, qos=qos)
        while sent - acked[0] > 1000:  # the same in-flight window: paho's queue stays shallow
            time.sleep(0.0005)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def main(quick: bool = False) -> Path:
    """Run and write bench/results/simulator.json."""
    model_cars, model_ticks = (1000, 10) if quick else (1000, 60)
    pub_cars, pub_ticks = (200, 10) if quick else (200, 50)
    rate = model_rate(model_cars, model_ticks)
    frames = frames_for(pub_cars, pub_ticks)
    size = sum(len(encode(f)) for _, f in frames) // len(frames)
    results = [
        result(
            "simulator",
            "pure model",
            "frames/s",
            rate,
            params={"cars": model_cars, "ticks": model_ticks, "goal": ">= 200,000"},
        ),
    ]

    def publish_rates(mqtt: MqttSettings) -> list[tuple[int, float, float, float]]:
        rates = []
        for qos in (0, 1):
            ceiling = ceiling_rate(mqtt, len(frames), size, qos)
            ours = ours_rate(mqtt, frames, qos, per_car=False)
            per_car = ours_rate(mqtt, frames, qos, per_car=True)
            rates.append((qos, ours, per_car, ceiling))
        return rates

    async def with_broker(tmp: str) -> list[tuple[int, float, float, float]]:
        mqtt_port, kafka_port = free_ports(2)
        stack = Stack(StackSettings(dir=Path(tmp), mqtt_port=mqtt_port, kafka_port=kafka_port))
        await stack.start()
        try:
            return await asyncio.to_thread(publish_rates, stack.mqtt)
        finally:
            await stack.stop()

    with tempfile.TemporaryDirectory(prefix="fleet-bench-sim-") as tmp:
        for qos, ours, per_car, ceiling in asyncio.run(with_broker(tmp)):
            results.append(
                result(
                    "simulator",
                    f"MQTT publish QoS{qos}, pool of {POOL} connections",
                    "msg/s",
                    ours,
                    peer=per_car,
                    peer_name=f"one connection per car ({pub_cars})",
                    ceiling=ceiling,
                    params={
                        "messages": len(frames),
                        "payload_bytes": size,
                        "cars": pub_cars,
                        "ceiling": "bare paho loop, constant payload, same QoS",
                        "goal": ">= 80% of ceiling",
                    },
                )
            )
    return write_results("simulator", results)


if __name__ == "__main__":
    print(json.dumps(json.loads(main(quick=True).read_text()), indent=2))
